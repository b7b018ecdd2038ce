"""Research code kept out of the shipped package: the annotated field sets' readers and the
red-cell centre network's training. Benchmarks and tests import it; the product never does."""
