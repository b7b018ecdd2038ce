"""What a larger network would cost on this machine: the Lite networks alone, by view.

    python -m benchmarks.architecture_speed [--threads 2] [--seconds 4]

The network alone (eager, inference mode, channels-last), on random input of each size, one cell
at a time and 16 at a time: the speed of an architecture does not depend on its weights, so this
prices a Lite1 or Lite2 recipe before any is trained.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from core.model.efficientnet_lite import EfficientNetLite

VIEWS = {"efficientnet_lite0": (224, 288), "efficientnet_lite1": (240, 288),
         "efficientnet_lite2": (260, 288)}


def cells_per_second(model: torch.nn.Module, batch: int, size: int, seconds: float) -> float:
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or len(times) < 3:
            started = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - started)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print("| network | parameters | view | cells/s, one at a time | cells/s, 16 at a time |")
    print("|---|---|---|---|---|")
    for architecture, views in VIEWS.items():
        model = EfficientNetLite(num_classes=8, architecture=architecture).eval()
        model = model.to(memory_format=torch.channels_last)
        parameters = sum(p.numel() for p in model.parameters())
        for size in views:
            one = cells_per_second(model, 1, size, args.seconds)
            many = cells_per_second(model, 16, size, args.seconds)
            print(f"| {architecture} | {parameters / 1e6:.1f} M | {size} | {one:.1f} | "
                  f"{many:.1f} |", flush=True)


if __name__ == "__main__":
    main()
