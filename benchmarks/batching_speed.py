"""Worker-level throughput with and without dynamic batching, in one process on this machine.

    python -m benchmarks.batching_speed [--threads 2] [--tasks 1 4 8 16] [--seconds 6]

``tasks`` threads each classify one cell after another, as tasks in a worker's thread pool do.
Without batching every task runs its own forward pass; with batching the passes requested
together run as one (up to 32 cells, waiting at most 5 ms). Prints cells per second for both,
and checks that both give the same labels.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import torch
from PIL import Image

from core.model.classifier import CellClassifier
from core.settings import DEFAULT_MODEL_PATH

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
    plain = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    batched = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    batched.enable_dynamic_batching(max_batch=32, max_wait=0.005)
    same = plain.scores(cells)[0].argmax(1).tolist() == batched.scores(cells)[0].argmax(1).tolist()
    print(f"torch threads {args.threads}; labels identical with and without batching: {same}")
    for tasks in args.tasks:
        without = throughput(plain, cells, tasks, args.seconds)
        with_batching = throughput(batched, cells, tasks, args.seconds)
        print(f"{tasks:3d} concurrent tasks: {without:6.1f} cells/s without batching, "
              f"{with_batching:6.1f} cells/s with dynamic batching", flush=True)


if __name__ == "__main__":
    main()
