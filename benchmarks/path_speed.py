"""The analysis path's speed against the classifier's alone, side by side in one run.

    python -m benchmarks.path_speed [--per-class 15] [--fields 3]

Whole processes, as a user runs them, on the same PBC test close-ups (``--per-class`` a
class): ``hematovision classify --json`` (every photo through the one analysis path) against
``hematovision evaluate`` (the classifier alone on the whole crop). Each runs twice, on an
eighth of the photos and on all of them, so that the start (imports, loading the model) drops
out: cells per second of wall time and CPU seconds a cell are the differences' ratios.
Then, in this process, the path's stages for a close-up (mean over the same photos, one at a
time) and for a 12 MP field (a Bio-Net val field enlarged to 4000 x 3000, median of three),
from the timings ``analyse`` records. Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.paths import BIONET, PBC
from core.settings import DEFAULT_MODEL_PATH, DEFAULT_RED_CELL_MODEL_PATH, Settings
from vision.field.analyse import analyse
from vision.field.learned_red_cells import load_red_cell_finder
from vision.model.classifier import CellClassifier

STAGES = ("scale", "quality", "detect", "frame", "classify", "total")


def close_ups(per_class: int) -> list[Path]:
    return [path for folder in sorted(p for p in (PBC / "test").iterdir() if p.is_dir())
            for path in sorted(folder.glob("*.jpg"))[:per_class]]


def _run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user and system time) of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _evaluate_folder(paths: list[Path], root: Path) -> Path:
    """``paths`` linked into class folders, as ``evaluate`` reads a split."""
    for path in paths:
        folder = root / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).symlink_to(path.resolve())
    return root


def per_cell(paths: list[Path], tool: str) -> tuple[float, float]:
    """Cells a second (wall) and CPU seconds a cell of ``tool``, its start left out."""
    few = paths[::8]
    cli = [sys.executable, "-m", "hematovision"]
    with tempfile.TemporaryDirectory() as root:
        if tool == "classify":
            runs = [_run([*cli, "classify", "--json", *map(str, subset)])
                    for subset in (few, paths)]
        else:
            runs = [_run([*cli, "evaluate", "--json",
                          str(_evaluate_folder(subset, Path(root) / name))])
                    for name, subset in (("few", few), ("all", paths))]
    (wall_few, cpu_few), (wall_all, cpu_all) = runs
    cells = len(paths) - len(few)
    return cells / (wall_all - wall_few), (cpu_all - cpu_few) / cells


def stages(images: list[Image.Image], classifier: CellClassifier, repeats: int = 1,
           ) -> dict[str, float]:
    """Each stage's milliseconds: the mean over ``images`` (the median of ``repeats``)."""
    finder = load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH)
    analyse(images[0], classifier, red_cells=finder)  # warm up
    seen: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for image in images:
        runs = [analyse(image, classifier, red_cells=finder).timings for _ in range(repeats)]
        for stage in STAGES:
            seen[stage].append(statistics.median(run.get(stage, 0.0) for run in runs))
    return {stage: 1000 * statistics.mean(values) for stage, values in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=15)
    parser.add_argument("--fields", type=int, default=3)
    args = parser.parse_args()
    paths = close_ups(args.per_class)
    print(f"{len(paths)} PBC test close-ups, {os.cpu_count()} cores, torch {torch.__version__}")
    print("| process | cells/s | CPU s a cell |")
    print("|---|---|---|")
    rates = {}
    for tool in ("evaluate", "classify"):
        rate, cpu = per_cell(paths, tool)
        rates[tool] = (rate, cpu)
        print(f"| `hematovision {tool}` | {rate:.1f} | {cpu:.3f} |", flush=True)
    print(f"path overhead: {rates['classify'][1] / rates['evaluate'][1]:.2f} x the classifier's "
          "CPU a cell")

    # Screened as served (``HV_SCREEN_MODEL_PATH=`` for the model alone, as classify is then).
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", fast=True,
                                              screen=Settings().screen_model_path)
    classifier.compile_for_cpu()
    cells = stages([Image.open(p).convert("RGB") for p in paths], classifier)
    fields = [Image.open(p).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
              for p in sorted((BIONET / "fields" / "val").glob("*.jpg"))[:args.fields]]
    large = stages(fields, classifier, repeats=3)
    print("| stage | close-up ms | 12 MP field ms |")
    print("|---|---|---|")
    for stage in STAGES:
        print(f"| {stage} | {cells[stage]:.1f} | {large[stage]:.1f} |")


if __name__ == "__main__":
    main()
