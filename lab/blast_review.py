"""Write the possible-blast review threshold chosen on validation patients into a model's card
(``blast_review_above``; the weights and their SHA-256 are untouched).

    python -m benchmarks.abnormal_cells --model M --split val --choose-review   # choose
    python -m lab.blast_review --model M --threshold T                          # record
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vision.labels import BLAST_LIKE
from vision.model.artifact import card_path, verified_card


def record(weights: Path, threshold: float) -> None:
    card = verified_card(weights)
    if not BLAST_LIKE & set(card.classes):
        raise SystemExit(f"{card.version} names no blast: nothing to review for")
    path = card_path(weights)
    fields = json.loads(path.read_text())
    fields["blast_review_above"] = threshold
    path.write_text(json.dumps(fields, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.blast_review", description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threshold", type=float, required=True)
    args = parser.parse_args(argv)
    record(args.model, args.threshold)
    print(f"{args.model}: blast_review_above = {args.threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
