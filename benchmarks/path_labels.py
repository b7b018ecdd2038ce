"""Every label the analysis path gives, written down, to show a faster path changes none.

    python -m benchmarks.path_labels --out FILE [--sets pbc-test lisc bionet-val bionet-test
                                     deepapl-val] [--limit N] [--model FILE] [--screen FILE]
                                     [--no-screen] [--torchscript] [--fp32]
    python -m benchmarks.path_labels --compare BEFORE AFTER

The first form runs each image of the sets through ``analyse`` as ``hematovision classify``
does (the shipped model screened for blasts and the red-cell network, scored in bfloat16 first
where the CPU has it, as served; with ``--fp32`` not; with ``--torchscript`` the networks frozen
as the workers run them) and writes one JSON line per image: its mode, why it was refused, and
each classified cell's box, label, confidence and review reasons. The second
compares two such files: images whose labels, boxes, flags or mode differ, and the largest change
of a confidence.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from benchmarks.paths import BIONET, LISC, PBC, SHARED_DATA
from benchmarks.served import add_model_arguments, served_classifier
from core.settings import DEFAULT_RED_CELL_MODEL_PATH
from vision.field.analyse import analyse
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.results import Analysis

SETS = {"pbc-test": PBC / "test", "lisc": LISC, "bionet-val": BIONET / "fields" / "val",
        "bionet-test": BIONET / "fields" / "test",
        "deepapl-val": SHARED_DATA / "deepapl" / "val"}


def images_of(name: str, limit: int | None) -> Iterator[Path]:
    root = SETS[name]
    paths = sorted(root.rglob("*.jpg")) + sorted(root.rglob("*.bmp"))
    yield from paths[:limit]


def record(name: str, path: Path, analysis: Analysis) -> dict[str, object]:
    return {"set": name, "image": path.name, "mode": analysis.mode,
            "refused": analysis.quality.problem if analysis.rejected and analysis.quality else None,
            "cells": [[list(c.box), c.label, round(c.confidence or 0.0, 4), list(c.reasons)]
                      for c in analysis.classified]}


def write(args: argparse.Namespace) -> None:
    classifier = served_classifier(args, fast=not args.fp32)
    if args.torchscript:
        classifier.compile_for_cpu()
    red_cells = load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH)
    # A run cut short goes on where it stopped.
    done = set(_read(args.out)) if args.out.exists() else set()
    with args.out.open("a") as out:
        for name in args.sets:
            started, count = time.perf_counter(), 0
            for path in images_of(name, args.limit):
                if (name, path.name) in done:
                    continue
                with Image.open(path) as image:
                    analysis = analyse(image, classifier, red_cells=red_cells)
                out.write(json.dumps(record(name, path, analysis)) + "\n")
                count += 1
                if count % 200 == 0:
                    print(f"{name}: {count} images", flush=True)
            print(f"{name}: {count} images in {time.perf_counter() - started:.0f} s", flush=True)


def _read(path: Path) -> dict[tuple[str, str], dict[str, object]]:
    rows = (json.loads(line) for line in path.read_text().splitlines())
    return {(row["set"], row["image"]): row for row in rows}


def compare(before_path: Path, after_path: Path) -> None:
    before, after = _read(before_path), _read(after_path)
    common = sorted(set(before) & set(after))
    print(f"{len(common)} images in both ({len(before)} before, {len(after)} after)")
    differ, largest = [], 0.0
    for key in common:
        old, new = before[key], after[key]
        same = (old["mode"] == new["mode"] and old["refused"] == new["refused"]
                and [(c[0], c[1], c[3]) for c in old["cells"]]  # type: ignore[union-attr]
                == [(c[0], c[1], c[3]) for c in new["cells"]])  # type: ignore[union-attr]
        if not same:
            differ.append(key)
            continue
        for a, b in zip(old["cells"], new["cells"], strict=True):  # type: ignore[call-overload]
            largest = max(largest, abs(a[2] - b[2]))
    by_set: dict[str, int] = {}
    for name, _ in differ:
        by_set[name] = by_set.get(name, 0) + 1
    print(f"differ: {len(differ)} {by_set}; largest confidence change elsewhere {largest:.4f}")
    for key in differ[:20]:
        print(f"  {key}: {before[key]} -> {after[key]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--limit", type=int)
    add_model_arguments(parser)
    parser.add_argument("--torchscript", action="store_true")
    parser.add_argument("--fp32", action="store_true", help="no bfloat16 first pass")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    elif args.out:
        write(args)
    else:
        parser.error("give --out or --compare")


if __name__ == "__main__":
    main()
