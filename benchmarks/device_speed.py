"""Classifier speed on the best device here (CUDA when present): batch sizes 1 to 256.

    python -m benchmarks.device_speed [--device auto] [--seconds 3] [--max-batch 256]
        [--checkpoint RUN/checkpoint.safetensors] [--compare ../shared/data/pbc/test]

Prints, per batch size and precision (fp32; on CUDA also fp16 and bf16 autocast; on a CPU with
bf16 kernels, such as AVX-512 BF16, also bf16 autocast), cells per second and the latency of one
batch, and checks that reduced precision keeps the fp32 labels of
the fixture cells. Made to be run as one short prepared check on a lent GPU machine.
``--checkpoint`` measures a training run's weights instead of the shipped model (the same
architecture, so the same speed), for a machine that cannot receive the model file too.
``--compare`` classifies a whole ImageFolder split in each precision, as served (the card's
preprocessing, batches of 256), and counts the cells whose label differs from fp32's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from core.settings import DEFAULT_MODEL_PATH
from vision.data import index_image_folder
from vision.labels import PBC_CLASSES
from vision.model.classifier import CellClassifier, resolve_device
from vision.model.preprocess import Preprocessing
from vision.training.checkpoint import checkpoint_model

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pbc"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _model(checkpoint: Path | None, device: torch.device) -> tuple[nn.Module, Preprocessing]:
    if checkpoint is None:
        classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, str(device))
        return classifier.model, classifier.preprocess
    # A run's network and view are in its recipe, beside the weights.
    model, config = checkpoint_model(checkpoint)
    preprocess = Preprocessing.for_crop(config.serving_resolution)
    return model.to(device, memory_format=torch.channels_last), preprocess


def compare(model: nn.Module, preprocess: Preprocessing, folder: Path, device: torch.device,
            precisions: dict[str, torch.dtype | None], batch: int = 256) -> None:
    samples = index_image_folder(folder, PBC_CLASSES)
    labels = torch.tensor([s.label for s in samples])
    probabilities: dict[str, list[torch.Tensor]] = {name: [] for name in precisions}
    for start in range(0, len(samples), batch):
        images = []
        for sample in samples[start:start + batch]:
            with Image.open(sample.path) as image:
                images.append(image.convert("RGB"))
        x = preprocess.batch(images).to(device).contiguous(memory_format=torch.channels_last)
        for name, dtype in precisions.items():
            autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
            with torch.inference_mode(), autocast:
                probabilities[name].append(model(x).float().softmax(1).cpu())
    joined = {name: torch.cat(chunks) for name, chunks in probabilities.items()}
    reference = joined["fp32"]
    print(f"{folder}: {len(samples)} cells")
    for name, p in joined.items():
        differ = int((p.argmax(1) != reference.argmax(1)).sum())
        accuracy = float((p.argmax(1) == labels).float().mean())
        drift = float((p - reference).abs().max())
        print(f"  {name}: accuracy {accuracy:.4f}, labels differing from fp32 {differ}, "
              f"max probability drift {drift:.2e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--compare", type=Path, help="an ImageFolder split to classify whole")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model, preprocess = _model(args.checkpoint, device)
    cells = [Image.open(p).convert("RGB") for p in sorted(FIXTURES.glob("*.jpg"))]
    base = preprocess.batch(cells)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    precisions = {"fp32": None}
    if device.type == "cuda":
        precisions |= {"fp16": torch.float16, "bf16": torch.bfloat16}
    elif torch.ops.mkldnn._is_mkldnn_bf16_supported():
        precisions |= {"bf16": torch.bfloat16}
    if args.compare is not None:
        compare(model, preprocess, args.compare, device, precisions)
    with torch.inference_mode():
        reference = model(base.to(device).contiguous(memory_format=torch.channels_last))
        for label, dtype in precisions.items():
            autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
            with autocast:
                logits = model(base.to(device).contiguous(memory_format=torch.channels_last))
            same = bool((logits.float().argmax(1) == reference.argmax(1)).all())
            drift = float((logits.float().softmax(1) - reference.softmax(1)).abs().max())
            print(f"{label}: fixture labels equal to fp32: {same}; max probability drift "
                  f"{drift:.2e}")
            batch = 1
            while batch <= args.max_batch:
                x = base.repeat(batch // len(base) + 1, 1, 1, 1)[:batch].to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                with autocast:
                    model(x)  # warm-up (kernel selection, allocator)
                _sync(device)
                times = []
                deadline = time.monotonic() + args.seconds
                while time.monotonic() < deadline or len(times) < 3:
                    started = time.perf_counter()
                    with autocast:
                        model(x)
                    _sync(device)
                    times.append(time.perf_counter() - started)
                median = statistics.median(times)
                print(f"  {label} batch {batch:3d}: {batch / median:8.1f} cells/s, "
                      f"{1000 * median:7.2f} ms per batch", flush=True)
                batch *= 2


if __name__ == "__main__":
    main()
