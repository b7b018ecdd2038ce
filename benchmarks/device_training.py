"""Fine-tune several recipes at once on a lent GPU machine, inside its time and transfer limits.

A lent machine receives at most 64 MiB per call (the working tree included, and many small
files count for more than their bytes), keeps what a call left in /tmp only while it stays
warm (30 s after each call), returns at most 16 MB per file, and its time is short. So the run
is prepared here, made there in a few calls, and finished here:

    python -m benchmarks.device_training pack --data ../shared/data/pbc --part-mib 57 59
    # Move the shipped weights out of the working tree for the first calls (they fill the
    # 64 MiB); a recipe with ``init_from`` needs its model back in models/ for the last call.
    # call 1 carries .gpuA and the wheels (.whl: pydantic and its needs), call 2 .gpuB:
    cp -r .gpuA /tmp/gpuA   # likewise .gpuB; pip install --target /tmp/site .whl/*.whl
    # the last call carries .gpuC (the rest of train and a val sample), unpacks and trains:
    mkdir /tmp/pbc && cd /tmp/pbc && for z in /tmp/gpuA/part.zip /tmp/gpuB/part.zip \
        $REPO/.gpuC/part.zip; do python -m zipfile -e $z .; done && cd $REPO
    python -m benchmarks.device_training run --data /tmp/pbc --imagenet /tmp/gpuA \
        --out $OUT --budget-s 520 configs/pbc-lite0-ft-v6a.json ...
    # back here: each run's weights, then all of val for each, to choose a candidate:
    python -m benchmarks.device_training unpack --parts DIR --name pbc-lite0-ft-v6a \
        --run-dir var/runs/v6a/checkpoint
    python -m benchmarks.device_training choose --data ../shared/data/pbc var/runs/v6a/checkpoint
    # for the candidate chosen, evaluation and card (resumes after the last epoch):
    hematovision train --data ../shared/data/pbc --config configs/pbc-lite0-ft-v6a.json \
        --out var/runs/v6a --device cpu

``pack`` splits the train images, byte for byte, over stored zips, adds a sample of val for the
progress lines (candidates are chosen here, on all of val), and rounds the ImageNet weights of
each ``--architectures`` to fp16 (an initialisation only). ``run`` builds the caches each
recipe's serving view needs, stops any recipe still running at the budget, and sends each run's
last weights back in parts under 16 MB. A run stopped at the budget resumes from its checkpoint
in a later call on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load, save, save_file

from core.data import index_image_folder, subsample
from core.labels import PBC_CLASSES
from core.model.imagenet import imagenet_checkpoint_path
from core.training.config import Phase, TrainConfig

PART_BYTES = 15_000_000


def imagenet_file(folder: Path, architecture: str) -> Path:
    return folder / f"imagenet-fp16-{architecture}.pth"


def pack(data: Path, parts: list[Path], part_bytes: list[int], val_images: int,
         architectures: Sequence[str] = ("efficientnet_lite0",)) -> None:
    """Split the train images, unchanged, over stored zips; a val sample goes in the last.

    Each part but the last holds at most its ``part_bytes``; the first also holds the ImageNet
    weights of each architecture, rounded to fp16 (an initialisation only, half the bytes).
    """
    for folder in parts:
        folder.mkdir(parents=True, exist_ok=True)
    used = 0
    for architecture in architectures:
        state = torch.load(imagenet_checkpoint_path(architecture), map_location="cpu",
                           weights_only=True)
        halved = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        torch.save(halved, imagenet_file(parts[0], architecture))
        used += imagenet_file(parts[0], architecture).stat().st_size
    current = 0
    val = subsample(index_image_folder(data / "val", PBC_CLASSES), val_images, 0)
    # Stored, not deflated: JPEGs do not compress, and one file travels lighter than thousands.
    zips = [zipfile.ZipFile(folder / "part.zip", "w", zipfile.ZIP_STORED) for folder in parts]
    try:
        for split, samples in (("train", index_image_folder(data / "train", PBC_CLASSES)),
                               ("val", val)):
            for sample in samples:
                size = sample.path.stat().st_size
                while (current < len(parts) - 1
                       and (split == "val" or used + size > part_bytes[current])):
                    current, used = current + 1, 0
                used += size
                zips[current].write(
                    sample.path, f"{split}/{sample.path.parent.name}/{sample.path.name}")
    finally:
        for part in zips:
            part.close()
    for folder in parts:
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{folder}: {size / 2**20:.1f} MiB")


def smoke(out: Path, device: str) -> None:
    """Two tiny epochs on the fixture cells: proves the device path before the real run."""
    fixtures = Path("tests/fixtures/pbc")
    for split in ("train", "val"):
        for path in fixtures.glob("*.jpg"):
            folder = out / "data" / split / path.name.split("__")[0]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.name)
    config = TrainConfig(version="smoke", batch_size=4, threads=2, phases=[
        Phase(epochs=1, resolution=96, lr=1e-3, frozen_blocks=8),
        Phase(epochs=1, resolution=128, lr=1e-3)])
    from core.training.finetune import fine_tune

    fine_tune(out / "data", out / "run", out / "cache", config, device=torch.device(device),
              splits_to_load=("train", "val"),
              imagenet=imagenet_file(Path(".gpuA"), config.architecture))


def child(data: Path, imagenet: Path | None, config_path: Path, run_dir: Path, cache: Path,
          device: str) -> None:
    """One recipe's epochs, on train and val only: test is read after it is chosen. Without
    ``imagenet`` the weights come from the installed package (a run on this machine)."""
    from core.training.finetune import fine_tune

    config = TrainConfig.from_file(config_path)
    # Three resolutions and one ragged last batch: few shapes, so tuning convolutions pays.
    torch.backends.cudnn.benchmark = device == "cuda"
    fine_tune(data, run_dir, cache, config, device=torch.device(device),
              splits_to_load=("train", "val"),
              imagenet=imagenet_file(imagenet, config.architecture) if imagenet else None,
              progress=lambda line: print(f"[{config.version}] {line}", flush=True))


def _export(run_dir: Path, name: str, out: Path) -> None:
    """The model weights (no optimiser moments) with the run's header, in parts."""
    header = json.loads((run_dir / "checkpoint.json").read_text())
    with open(run_dir / "checkpoint.safetensors", "rb") as handle:
        tensors = load(handle.read())
    model = {k: v for k, v in tensors.items() if k.startswith("model.")}
    blob = save(model, metadata={"checkpoint": json.dumps(header)})
    for index in range(0, len(blob), PART_BYTES):
        (out / f"{name}.part{index // PART_BYTES}").write_bytes(blob[index:index + PART_BYTES])
    print(f"{name}: {header['next_epoch']} epochs, sha256 {hashlib.sha256(blob).hexdigest()}")
    for entry in header["history"]:
        print(f"  {json.dumps(entry)}")


def run(data: Path, imagenet: Path, configs: list[Path], out: Path, budget_s: float,
        device: str) -> None:
    from core.training.finetune import load_split

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path("var/cache")
    crops = sorted({TrainConfig.from_file(path).serving_resolution for path in configs})
    for split in ("train", "val"):  # decoded once here, so the runs only read the cache
        for crop in crops:
            load_split(data, split, cache, None, 0, print, crop=crop)
    print(f"caches ready in {time.monotonic() - started:.0f} s", flush=True)
    runs = {}
    for config_path in configs:
        name = TrainConfig.from_file(config_path).version
        runs[name] = subprocess.Popen([
            sys.executable, "-m", "benchmarks.device_training", "child", "--data", str(data),
            "--imagenet", str(imagenet), "--config", str(config_path),
            "--run-dir", f"var/runs/{name}", "--cache", str(cache), "--device", device,
        ])
    deadline = started + budget_s
    for name, process in runs.items():
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(f"{name}: stopped at the budget ({budget_s:.0f} s)")
    for name in runs:
        if (Path(f"var/runs/{name}") / "checkpoint.json").exists():
            _export(Path(f"var/runs/{name}"), name, out)
    print(f"all done in {time.monotonic() - started:.0f} s")


def unpack(parts: Path, name: str, run_dir: Path) -> None:
    blob = b"".join(p.read_bytes() for p in sorted(parts.glob(f"{name}.part*"),
                                                   key=lambda p: int(p.suffix[5:])))
    print(f"{name}: sha256 {hashlib.sha256(blob).hexdigest()}")
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    header_length = int.from_bytes(blob[:8], "little")
    metadata = json.loads(blob[8:8 + header_length])["__metadata__"]
    header = json.loads(metadata["checkpoint"])
    run_dir.mkdir(parents=True, exist_ok=True)
    # No optimiser moments: the run is complete, so resuming only finishes the evaluation.
    save_file(load(blob), str(run_dir / "checkpoint.safetensors"))
    (run_dir / "checkpoint.json").write_text(json.dumps(header, indent=2))
    print(f"{name}: {header['next_epoch']} epochs written to {run_dir}")


def choose(data: Path, run_dirs: list[Path], cache: Path = Path("var/cache")) -> None:
    """Each run's accuracy on all of val, at its serving view: candidates are chosen on this."""
    from core.training.checkpoint import checkpoint_model
    from core.training.finetune import load_split, predict_logits

    torch.set_num_threads(2)
    for run_dir in run_dirs:
        model, config = checkpoint_model(run_dir / "checkpoint.safetensors")
        val = load_split(data, "val", cache, None, 0, print,
                         crop=config.serving_resolution)
        started = time.monotonic()
        wrong = int((predict_logits(model, val.images, config.serving_resolution)
                     .argmax(1) != val.labels).sum())
        print(f"{config.version} @{config.serving_resolution}: val accuracy "
              f"{1 - wrong / len(val.labels):.4f} ({wrong} of {len(val.labels)} wrong, "
              f"{time.monotonic() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--part-mib", type=float, nargs="+", default=[57, 59],
                   help="the most each part but the last may hold; one more part takes the rest")
    p.add_argument("--val-images", type=int, default=300)
    p.add_argument("--architectures", nargs="+", default=["efficientnet_lite0"],
                   help="whose ImageNet weights to pack (those the recipes start from)")
    s = sub.add_parser("smoke")
    s.add_argument("--out", type=Path, default=Path("/tmp/smoke"))
    s.add_argument("--device", default="cuda")
    r = sub.add_parser("run")
    r.add_argument("--device", default="cuda")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--imagenet", type=Path, required=True,
                   help="the folder of the packed imagenet-fp16-<architecture>.pth files")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget-s", type=float, default=330)
    r.add_argument("configs", type=Path, nargs="+")
    c = sub.add_parser("child")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--imagenet", type=Path,
                   help="packed ImageNet weights' folder (default: the installed packages)")
    c.add_argument("--config", type=Path, required=True)
    c.add_argument("--run-dir", type=Path, required=True)
    c.add_argument("--cache", type=Path, required=True)
    c.add_argument("--device", required=True)
    u = sub.add_parser("unpack")
    u.add_argument("--parts", type=Path, required=True)
    u.add_argument("--name", required=True)
    u.add_argument("--run-dir", type=Path, required=True)
    h = sub.add_parser("choose")
    h.add_argument("--data", type=Path, required=True)
    h.add_argument("run_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "pack":
        parts = [Path(f".gpu{chr(ord('A') + i)}") for i in range(len(args.part_mib) + 1)]
        pack(args.data, parts, [int(mib * 2**20) for mib in args.part_mib], args.val_images,
             args.architectures)
    elif args.command == "smoke":
        smoke(args.out, args.device)
    elif args.command == "run":
        run(args.data, args.imagenet, args.configs, args.out, args.budget_s, args.device)
    elif args.command == "child":
        child(args.data, args.imagenet, args.config, args.run_dir, args.cache, args.device)
    elif args.command == "choose":
        choose(args.data, args.run_dirs)
    else:
        unpack(args.parts, args.name, args.run_dir)


if __name__ == "__main__":
    main()
