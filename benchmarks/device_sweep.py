"""Which training recipe carries PBC to a laboratory it never saw? Several recipes at once on a
lent GPU, judged on Bio-Net's labelled white cells (another laboratory, kept out of training).

A lent machine takes at most 64 MiB a call with the working tree and keeps /tmp only while it
stays warm (30 s after a call), so the data go in two calls and the recipes run in the second:

    python -m benchmarks.device_sweep pack --pbc ../shared/data/pbc --parts .gpuA .gpuB
    # The shipped weights fill the 64 MiB: move those the recipes do not start from (v4a, v7,
    # the red-cell network) out of the working tree for the calls, and back after.
    # call 1 (carry .gpuA .whl: pydantic and its needs): pip install --target /tmp/site
    #   .whl/*.whl; cp -r .gpuA /tmp/gpuA; call 2 at once (carry .gpuB; PYTHONPATH=/tmp/site:.):
    #   unzip both parts into /tmp/sweep, then
    python -m benchmarks.device_sweep run --data /tmp/sweep --out $OUT --budget-s 330 \\
        configs/sweep/*.json
    # here: each run's weights on Bio-Net's train and val cells (an unseen laboratory), PBC val
    # (choose on these), then LISC, read once per candidate, on the CPU:
    python -m benchmarks.device_sweep judge --parts DIR NAME... --set var/cells/bionet/train \\
        var/cells/bionet/val ../shared/data/pbc/val

A sample of PBC's train images (6,000 of 10,902: the recipes go on from v5, which saw them
all) fits in two calls. Bio-Net's train and val cells are the unseen laboratory the choice is
made on; its test cells stay for a chosen model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load, save

from vision.data import index_image_folder, subsample
from vision.labels import PBC_CLASSES
from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.config import TrainConfig

PART_BYTES = 15_000_000
CROP = 288


def pack(pbc: Path, parts: list[Path], train_images: int, val_images: int) -> None:
    """A PBC train sample split evenly over the parts, a PBC val sample in the last. Files
    unchanged: re-encoded at the cache's size they grew, not shrank."""
    train = subsample(index_image_folder(pbc / "train", PBC_CLASSES), train_images, 0)
    for folder in parts:
        folder.mkdir(parents=True, exist_ok=True)
    zips = [zipfile.ZipFile(folder / "part.zip", "w", zipfile.ZIP_STORED) for folder in parts]
    try:
        for index, sample in enumerate(train):
            name = f"pbc/train/{sample.path.parent.name}/{sample.path.name}"
            # Dealt out in turn, so that every part holds every class: one part alone is a
            # fair sample (cut in path order, the last part held five classes of the eight).
            zips[index % len(parts)].write(sample.path, name)
        for sample in subsample(index_image_folder(pbc / "val", PBC_CLASSES), val_images, 0):
            zips[-1].write(sample.path, f"pbc/val/{sample.path.parent.name}/{sample.path.name}")
    finally:
        for part in zips:
            part.close()
    for folder in parts:
        print(f"{folder}: {(folder / 'part.zip').stat().st_size / 2**20:.1f} MiB")


def _child(data: Path, config_path: Path, run_dir: Path, cache: Path, device: str) -> None:
    from vision.training.finetune import fine_tune

    config = TrainConfig.from_file(config_path)
    torch.backends.cudnn.benchmark = True
    fine_tune(data / "pbc", run_dir, cache, config, device=torch.device(device),
              splits_to_load=("train", "val"),
              progress=lambda line: print(f"[{config.version}] {line}", flush=True))


def _accuracy_per_class(logits: torch.Tensor, labels: torch.Tensor) -> str:
    predicted = logits.argmax(1)
    right = predicted == labels
    parts = [f"all {right.float().mean():.3f} ({len(labels)})"]
    for index, name in enumerate(PBC_CLASSES):
        mask = labels == index
        if mask.any():
            wrong = predicted[mask & ~right]
            commonest = (f" ->{PBC_CLASSES[int(wrong.mode().values)][:4]}"
                         if len(wrong) else "")
            parts.append(f"{name[:4]} {right[mask].float().mean():.2f}/{int(mask.sum())}"
                         f"{commonest}")
    return " ".join(parts)


def _judge(model: EfficientNetLite, root: Path, names: tuple[str, ...], cache: Path) -> str:
    from vision.training.finetune import load_split, predict_logits

    splits = [load_split(root, name, cache, None, 0, lambda _: None, PBC_CLASSES,
                         crop=CROP) for name in names]
    images = torch.cat([s.images for s in splits])
    labels = torch.cat([s.labels for s in splits])
    return _accuracy_per_class(predict_logits(model, images, CROP), labels)


def _export(run_dir: Path, name: str, out: Path) -> None:
    """The model weights in fp16 (a probe, not a shipped model) with the run's header, in parts."""
    header = json.loads((run_dir / "checkpoint.json").read_text())
    with open(run_dir / "checkpoint.safetensors", "rb") as handle:
        tensors = load(handle.read())
    model = {k: (v.half() if v.is_floating_point() else v)
             for k, v in tensors.items() if k.startswith("model.")}
    blob = save(model, metadata={"checkpoint": json.dumps(header)})
    for index in range(0, len(blob), PART_BYTES):
        (out / f"{name}.part{index // PART_BYTES}").write_bytes(blob[index:index + PART_BYTES])
    print(f"{name}: {header['next_epoch']} epochs, sha256 {hashlib.sha256(blob).hexdigest()}")


def run(data: Path, configs: list[Path], out: Path, budget_s: float, device: str) -> None:
    from vision.training.checkpoint import checkpoint_model
    from vision.training.finetune import load_split

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path("var/cache")
    for split in ("train", "val"):  # decoded once here, so the runs only read the cache
        load_split(data / "pbc", split, cache, None, 0, print, PBC_CLASSES, crop=CROP)
    print(f"caches ready in {time.monotonic() - started:.0f} s", flush=True)
    runs = {}
    for config_path in configs:
        name = TrainConfig.from_file(config_path).version
        runs[name] = subprocess.Popen([
            sys.executable, "-m", "benchmarks.device_sweep", "child", "--data", str(data),
            "--config", str(config_path), "--run-dir", f"var/runs/{name}", "--cache", str(cache),
            "--device", device,
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
        run_dir = Path(f"var/runs/{name}")
        if not (run_dir / "checkpoint.json").exists():
            print(f"{name}: no epoch finished")
            continue
        model = checkpoint_model(run_dir / "checkpoint.safetensors")[0].to(device)
        print(f"{name} PBC val sample: {_judge(model, data / 'pbc', ('val',), cache)}", flush=True)
        _export(run_dir, name, out)
    print(f"all done in {time.monotonic() - started:.0f} s")


def judge(parts: Path, names: list[str], sets: list[Path]) -> None:
    """Each run's weights (from their parts) on each whole ImageFolder set, on this machine."""
    from vision.training.checkpoint import model_weights

    for name in names:
        blob = b"".join(p.read_bytes() for p in sorted(parts.glob(f"{name}.part*"),
                                                       key=lambda p: int(p.suffix[5:])))
        model = EfficientNetLite(num_classes=len(PBC_CLASSES))
        model.load_state_dict({k: v.float() for k, v in model_weights(load(blob)).items()})
        for root in sets:
            line = _judge(model.eval(), root.parent, (root.name,), Path("var/cache"))
            print(f"{name} {root}: {line}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack")
    p.add_argument("--pbc", type=Path, required=True)
    p.add_argument("--parts", type=Path, nargs="+", required=True)
    p.add_argument("--train", type=int, default=6000)
    p.add_argument("--val", type=int, default=600)
    c = verbs.add_parser("child")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--config", type=Path, required=True)
    c.add_argument("--run-dir", type=Path, required=True)
    c.add_argument("--cache", type=Path, required=True)
    c.add_argument("--device", default="cuda")
    r = verbs.add_parser("run")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget-s", type=float, default=330)
    r.add_argument("--device", default="cuda")
    r.add_argument("configs", type=Path, nargs="+")
    j = verbs.add_parser("judge")
    j.add_argument("--parts", type=Path, required=True)
    j.add_argument("--set", type=Path, nargs="+", required=True, dest="sets")
    j.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    if args.verb == "pack":
        pack(args.pbc, args.parts, args.train, args.val)
    elif args.verb == "child":
        _child(args.data, args.config, args.run_dir, args.cache, args.device)
    elif args.verb == "run":
        run(args.data, args.configs, args.out, args.budget_s, args.device)
    else:
        judge(args.parts, args.names, args.sets)


if __name__ == "__main__":
    main()
