"""What a larger network would cost on this machine: the Lite networks alone, by view.

    python -m benchmarks.architecture_speed [--threads 2] [--seconds 4]
    python -m benchmarks.architecture_speed --recipe configs/pbc-lite2-ft-v1.json [--images 10902]

The network alone (eager, inference mode, channels-last), on random input of each size, one cell
at a time and 16 at a time: the speed of an architecture does not depend on its weights, so this
prices a Lite1 or Lite2 model before any is trained. With ``--recipe`` it prices the training
instead: training steps (forward, backward, AdamW) at each phase's view and batch size, times the
phase's epochs over ``--images`` train images. Frozen blocks are trained here too, so a phase
that freezes some is priced a little high; augmentation and the per-epoch val pass are left out,
so the whole is a little low (v5: 7-8 images/s measured in its run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.config import TrainConfig

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


def training_images_per_second(model: torch.nn.Module, batch: int, size: int,
                               steps: int, bf16: bool = False) -> float:
    """Images per second through whole training steps, the median of ``steps`` after a warm-up,
    under bf16 autocast on the CPU as ``fine_tune`` runs them with ``cpu_bf16``."""
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 8, (batch,))
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step:  # the first step allocates
            times.append(time.perf_counter() - started)
    return batch / statistics.median(times)


def price_recipe(config: TrainConfig, images: int, steps: int) -> None:
    model = EfficientNetLite(num_classes=8, architecture=config.architecture)
    model = model.to(memory_format=torch.channels_last)
    print(f"{config.version}: {config.architecture}, batch {config.batch_size}, "
          f"{'bf16 autocast' if config.cpu_bf16 else 'fp32'}, {images} train images")
    print("| phase | epochs | view | images/s (training) | minutes per epoch | minutes |")
    print("|---|---|---|---|---|---|")
    total = 0.0
    for number, phase in enumerate(config.phases, 1):
        rate = training_images_per_second(model, config.batch_size, phase.resolution, steps,
                                          config.cpu_bf16)
        minutes = images / rate / 60
        total += minutes * phase.epochs
        print(f"| {number} | {phase.epochs} | {phase.resolution} | {rate:.1f} | {minutes:.1f} | "
              f"{minutes * phase.epochs:.0f} |", flush=True)
    print(f"epochs in all: about {total:.0f} min ({total / 60:.1f} h) on this machine")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--recipe", type=Path, help="price this training recipe's epochs")
    parser.add_argument("--images", type=int, default=10902, help="train images per epoch")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per view")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    if args.recipe is not None:
        price_recipe(TrainConfig.from_file(args.recipe), args.images, args.steps)
        return
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
