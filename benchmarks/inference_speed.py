"""Classifier inference speed on this machine: cells per second, one at a time and batched.

    python -m benchmarks.inference_speed [--threads 2] [--model PATH] [--bf16-first]

With ``--bf16-first``, as the path serves cells on a CPU with native bfloat16: bfloat16 first,
the close calls again in fp32 (``vision.model.classifier``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from vision.model.classifier import CellClassifier

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pbc"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bf16-first", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier = CellClassifier.from_artifact(args.model, "cpu", fast=args.bf16_first)
    cells = [Image.open(p).convert("RGB") for p in sorted(FIXTURES.glob("*.jpg"))]
    print(f"model {classifier.version}, {args.threads} threads, torch {torch.__version__}, "
          f"{'bf16 first' if args.bf16_first else 'fp32'}")
    for batch in (1, 4, 8, 16, 32, 64):
        images = (cells * (batch // len(cells) + 1))[:batch]
        classifier.batch_size = batch
        classifier.probabilities(images)  # warm up
        rates = []
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            classifier.probabilities(images)
            rates.append(batch / (time.perf_counter() - started))
        print(f"batch {batch:>3}: {statistics.median(rates):6.1f} cells/s "
              f"(median of {len(rates)} runs, preprocessing included)")


if __name__ == "__main__":
    main()
