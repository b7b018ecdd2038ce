"""Abnormal cells through the analysis path, as ``hematovision classify`` gives them.

    python -m benchmarks.abnormal_cells [--model FILE] [--split val|test] [--pbc-test]
        [--choose-review] [--limit N]

DeepAPL (leukaemia patients of another laboratory, split by patient): each crop through
``analyse`` with the shipped red-cell network; the cell nearest the centre is the crop's cell.
Prints: blasts (with promonocytes) named blast; of the cells named blast, how many are; blasts
named a mature normal cell with >= 90% confidence and no review flag; the eight normal classes'
accuracy; every patient holding blasts taken as one case (does it raise the blast alert?), and
patients without blasts (do they?); the confusion by class.

``--choose-review`` (val only) prints, for each candidate threshold of the blast-like classes'
probability at which a cell named otherwise is flagged as a possible blast, the blasts that
would still leave confidently normal and unflagged, and the share of normal cells (DeepAPL's
and PBC val's) it would flag: the card's ``blast_review_above`` is chosen from it.
``--pbc-test``: PBC test (healthy donors) through the path: accuracy, and cells named blast.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks.cross_lab import centred_cell
from benchmarks.paths import PBC, SHARED_DATA
from benchmarks.served import add_model_arguments, served_classifier
from core.settings import DEFAULT_RED_CELL_MODEL_PATH
from vision.data import index_image_folder
from vision.field.analyse import analyse
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.results import Cell
from vision.labels import BLAST_LIKE, MATURE_NORMAL, PBC_CLASSES
from vision.model.classifier import CellClassifier

DEEPAPL = SHARED_DATA / "deepapl"
CANDIDATE_THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)


@dataclass(frozen=True)
class Item:
    path: Path
    truth: str
    patient: str
    # The laboratory's own class and the patient's diagnosis: APL's promyelocytes are filed
    # under "ig" but are that leukaemia's malignant cells (``Read.malignant_promyelocyte``).
    source_class: str = ""
    diagnosis: str = ""


@dataclass(frozen=True)
class Read:
    item: Item
    cell: Cell | None

    @property
    def truth(self) -> str:
        return self.item.truth

    @property
    def patient(self) -> str:
        return self.item.patient

    @property
    def malignant_promyelocyte(self) -> bool:
        return self.item.source_class == "Promyelocyte" and self.item.diagnosis == "APL"

    @property
    def label(self) -> str:
        return self.cell.label or "none" if self.cell else "none"

    def confidently_normal(self, review_above: float | None) -> bool:
        """Named a mature normal cell with >= 90% confidence and left unflagged (under
        ``review_above`` as the possible-blast threshold, where given)."""
        cell = self.cell
        if cell is None or cell.label not in MATURE_NORMAL or (cell.confidence or 0) < 0.9:
            return False
        reasons = [r for r in cell.reasons if r != "possible_blast"]
        flagged = bool(reasons) or (review_above is not None
                                    and cell.blast_probability >= review_above)
        return not flagged if review_above is not None else not cell.review


def read_all(classifier: CellClassifier, items: list[Item], red_cell_model: Path,
             name: str) -> list[Read]:
    finder = load_red_cell_finder(red_cell_model)
    reads = []
    started = time.monotonic()
    for index, item in enumerate(items, start=1):
        with Image.open(item.path) as image:
            analysis = analyse(image, classifier, red_cells=finder)
        reads.append(Read(item, centred_cell(analysis)))
        if index % 200 == 0 or index == len(items):
            print(f"  {name}: {index}/{len(items)} ({index / (time.monotonic() - started):.1f}"
                  " images/s)", flush=True)
    return reads


def deepapl_items(split: str, limit: int | None) -> list[Item]:
    with (DEEPAPL / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    return [Item(DEEPAPL / row["path"], row["label"], row["patient"], row["source_class"],
                 row["diagnosis"]) for row in rows][:limit]


def pbc_items(split: str, limit: int | None) -> list[Item]:
    return [Item(s.path, PBC_CLASSES[s.label], "pbc")
            for s in index_image_folder(PBC / split, PBC_CLASSES)][:limit]


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "0/0"


def report(reads: list[Read]) -> None:
    blasts = [r for r in reads if r.truth in BLAST_LIKE]
    named_blast = [r for r in reads if r.label in BLAST_LIKE]
    normal = [r for r in reads if r.truth in PBC_CLASSES]
    print(f"blasts (with promonocytes) named blast: "
          f"{_share(sum(r.label in BLAST_LIKE for r in blasts), len(blasts))}")
    print(f"of the cells named blast, blasts: "
          f"{_share(sum(r.truth in BLAST_LIKE for r in named_blast), len(named_blast))}")
    print(f"blasts named a mature normal cell, >= 90% confident, unflagged: "
          f"{_share(sum(r.confidently_normal(None) for r in blasts), len(blasts))}")
    seen = sum(r.label in BLAST_LIKE or bool(r.cell and r.cell.review) for r in blasts)
    print(f"blasts named blast or flagged for review: {_share(seen, len(blasts))}")
    right = sum(r.label == r.truth for r in normal)
    print(f"eight normal classes right: {_share(right, len(normal))}")
    # In APL the promyelocytes are the leukaemia (the WHO counts them with the blasts), so how
    # the other normal cells fare is told apart, and what the malignant ones are called.
    others = [r for r in normal if not r.malignant_promyelocyte]
    print(f"  APL's promyelocytes left out: "
          f"{_share(sum(r.label == r.truth for r in others), len(others))}")
    apl = [r for r in normal if r.malignant_promyelocyte]
    if apl:
        flagged = sum(r.label not in BLAST_LIKE and bool(r.cell and r.cell.review) for r in apl)
        print(f"  APL's promyelocytes ({len(apl)}): named ig "
              f"{_share(sum(r.label == 'ig' for r in apl), len(apl))}, named blast "
              f"{_share(sum(r.label in BLAST_LIKE for r in apl), len(apl))}, otherwise flagged "
              f"{_share(flagged, len(apl))}; commonest: "
              + ", ".join(f"{label} {n}" for label, n in
                          Counter(r.label for r in apl).most_common(4)))
    by_patient: dict[str, list[Read]] = defaultdict(list)
    for read in reads:
        by_patient[read.patient].append(read)
    with_blasts = [p for p, rs in by_patient.items() if any(r.truth in BLAST_LIKE for r in rs)]
    without = [p for p in by_patient if p not in with_blasts]
    alerted = {p for p, rs in by_patient.items() if any(r.label in BLAST_LIKE for r in rs)}
    print(f"patients with blasts whose case raises the blast alert: "
          f"{_share(len(alerted & set(with_blasts)), len(with_blasts))}")
    print(f"patients without blasts among their cells whose case raises it: "
          f"{_share(len(alerted & set(without)), len(without))}")
    print("by class (right / cells, commonest answers):")
    for truth in sorted({r.truth for r in reads}):
        of_class = [r for r in reads if r.truth == truth]
        answers = Counter(r.label for r in of_class).most_common(3)
        print(f"  {truth:20s} {sum(r.label == truth for r in of_class):4d}/{len(of_class):4d}  "
              + ", ".join(f"{label} {n}" for label, n in answers))


def choose_review(reads: list[Read], pbc_reads: list[Read]) -> None:
    blasts = [r for r in reads if r.truth in BLAST_LIKE]
    normal = [r for r in reads + pbc_reads
              if r.truth not in BLAST_LIKE and r.cell is not None
              and r.cell.label not in BLAST_LIKE]
    print("threshold | blasts left confidently normal, unflagged | normal cells flagged as "
          "possible blasts")
    for threshold in CANDIDATE_THRESHOLDS:
        slipped = sum(r.confidently_normal(threshold) for r in blasts)
        flagged = sum(r.cell is not None and r.cell.blast_probability >= threshold
                      for r in normal)
        print(f"  {threshold:.2f} | {_share(slipped, len(blasts))} | "
              f"{_share(flagged, len(normal))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--red-cells", type=Path, default=DEFAULT_RED_CELL_MODEL_PATH)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--choose-review", action="store_true")
    parser.add_argument("--pbc-test", action="store_true")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    classifier = served_classifier(args)
    print(f"model {classifier.version}, possible-blast review from "
          f"{classifier.blast_review_above}"
          + (f", screened by {classifier.screen.version}" if classifier.screen else ""))
    reads = read_all(classifier, deepapl_items(args.split, args.limit), args.red_cells,
                     f"DeepAPL {args.split}")
    print(f"\nDeepAPL {args.split} ({len(reads)} cells, "
          f"{len({r.patient for r in reads})} patients) through the path")
    report(reads)
    if args.choose_review:
        if args.split != "val":
            parser.error("--choose-review chooses on val only")
        choose_review(reads, read_all(classifier, pbc_items("val", args.limit), args.red_cells,
                                      "PBC val"))
    if args.pbc_test:
        pbc = read_all(classifier, pbc_items("test", args.limit), args.red_cells, "PBC test")
        print(f"\nPBC test ({len(pbc)} cells) through the path: right "
              f"{_share(sum(r.label == r.truth for r in pbc), len(pbc))}, named blast "
              f"{_share(sum(r.label in BLAST_LIKE for r in pbc), len(pbc))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
