"""Worker-level throughput with and without dynamic batching, in one process on this machine.

    python -m benchmarks.batching_speed [--threads 2] [--tasks 1 4 8 16] [--seconds 6]

``tasks`` threads each classify one cell after another, as tasks in a worker's thread pool do.
Without batching every task runs its own forward pass; with batching the passes requested
together run as one (up to 32 cells, waiting at most 5 ms). Each with the eager network and
with the frozen TorchScript one, all in the same run. Prints cells per second for the four
variants and checks that they give the same labels.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import torch
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from vision.model.classifier import CellClassifier

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pbc"


def throughput(classifier: CellClassifier, cells: list[Image.Image], tasks: int,
               seconds: float) -> float:
    done = [0] * tasks
    stop = time.monotonic() + seconds

    def task(index: int) -> None:
        number = index
        while time.monotonic() < stop:
            classifier.scores([cells[number % len(cells)]])
            done[index] += 1
            number += 1

    threads = [threading.Thread(target=task, args=(i,)) for i in range(tasks)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cells = [Image.open(p).convert("RGB") for p in sorted(FIXTURES.glob("*.jpg"))]
    variants = {}
    for network in ("eager", "torchscript"):
        for batching in (False, True):
            classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
            if network == "torchscript":
                classifier.compile_for_cpu()
            if batching:
                classifier.enable_dynamic_batching(max_batch=32, max_wait=0.005)
            variants[(network, batching)] = classifier
    reference = variants[("eager", False)].scores(cells)[0].argmax(1).tolist()
    same = all(c.scores(cells)[0].argmax(1).tolist() == reference for c in variants.values())
    print(f"torch threads {args.threads}; labels identical in all four variants: {same}")
    print("tasks | " + " | ".join(f"{n}{' + batching' if b else ''}" for n, b in variants))
    for tasks in args.tasks:
        rates = [throughput(c, cells, tasks, args.seconds) for c in variants.values()]
        print(f"{tasks:5d} | " + " | ".join(f"{r:6.1f}" for r in rates) + "  cells/s", flush=True)


if __name__ == "__main__":
    main()
