"""Would averaging over rotated and mirrored views, or a larger view, help a trained model?

    python -m benchmarks.test_time_views MODEL.safetensors [--data ../shared/data/pbc]

Cells have no up or down, so the eight rotations and mirrorings of a cell are the same cell.
For each way of viewing the cached val images it prints accuracy, and test accuracy only for the
view as served and the best on val (choose on val; report test once). Views cost their number in
forward passes at serving time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.paths import PBC
from vision.model.artifact import load_artifact
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.training.finetune import load_split, predict_logits

View = Callable[[torch.Tensor], torch.Tensor]
DIHEDRAL: list[View] = [
    lambda x: x,
    lambda x: x.flip(-1),
    lambda x: x.flip(-2),
    lambda x: x.rot90(1, (-2, -1)),
    lambda x: x.rot90(1, (-2, -1)).flip(-1),
    lambda x: x.rot90(2, (-2, -1)),
    lambda x: x.rot90(3, (-2, -1)),
    lambda x: x.rot90(3, (-2, -1)).flip(-1),
]


def probabilities(model: EfficientNetLite, images: torch.Tensor, size: int,
                  views: list[View], temperature: float) -> torch.Tensor:
    """Calibrated probabilities averaged over the views (applied to the cached squares)."""
    total = sum((predict_logits(model, view(images), size) / temperature).softmax(1)
                for view in views)
    return total / len(views)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=PBC)
    parser.add_argument("--cache", type=Path, default=Path("var/cache"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, card, _ = load_artifact(args.model)
    model = model.to(memory_format=torch.channels_last)  # as predict_logits feeds it
    crop = card.preprocess.crop  # the views are taken around the model's own
    splits = {name: load_split(args.data, name, args.cache, None, 0, print, card.classes,
                               crop=crop)
              for name in ("val", "test")}
    larger = Preprocessing.for_crop(crop).resize
    variants = [
        (crop, DIHEDRAL[:1], f"{crop} centre crop (as served)"),
        (crop, DIHEDRAL[:2], f"{crop}, + mirrored"),
        (crop, DIHEDRAL[:4], f"{crop}, + mirrored, flipped, rotated 90"),
        (crop, DIHEDRAL, f"{crop}, all 8 rotations and mirrorings"),
        (larger, DIHEDRAL[:1], f"the same view at {larger} px (upsampled)"),
    ]

    def accuracy(split: str, size: int, views: list[View]) -> float:
        data = splits[split]
        predicted = probabilities(model, data.images, size, views, card.temperature).argmax(1)
        return float((predicted == data.labels).float().mean())

    val = []
    for size, views, name in variants:
        val.append(accuracy("val", size, views))
        print(f"val {val[-1]:.4f}  {name} ({len(views)} forward passes)", flush=True)
    best = max(range(1, len(variants)), key=lambda i: val[i])
    print("| view | forward passes per cell | val accuracy | test accuracy |")
    print("|---|---|---|---|")
    for index in (0, best):
        size, views, name = variants[index]
        print(f"| {name} | {len(views)} | {val[index]:.4f} | "
              f"{accuracy('test', size, views):.4f} |", flush=True)


if __name__ == "__main__":
    main()
