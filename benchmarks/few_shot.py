"""Few-shot curve: a laboratory's cells named after 0, 10, 25, 50, 100 of its labelled cells.

For each laboratory, its cells are split into a *pool* (the experts' labelled cells an
adaptation may use) and *held-out* cells (scored), so that no cell is on both sides:

- LISC holds several shifted and rotated copies of each of about 250 cells, consecutive in
  file order. Copies are grouped (consecutive files that match by normalised cross-correlation
  under the square's symmetries, or by embedding), the first half of each class's groups is the
  pool, the rest held out. Each labelled "cell" drawn from the pool is one per group.
- Bio-Net: the pool is val, the held-out cells are test (framed by ``benchmarks.bionet_cells``).

Each point draws the labelled cells class-balanced, adapts the head exactly as
``hematovision adapt`` does (``vision.training.adapt``) and scores the held-out cells as serving
would: accuracy, the share labelled (not "not recognised"), the wrong share among labelled
cells at >= 90% confidence, and the share of the images of no blood cell
(``vision.training.noncell``) the adapted model accepts. Three draws per point; their mean is
printed.
With ``--framing path`` every cell (labelled and held out) is first framed as the analysis path
frames a close-up's cell (``vision.field.analyse.framed_cell``), as ``hematovision adapt`` does
by default and as the worker shows a laboratory's cells; the copies of a LISC cell are grouped
by the images as given either way, so both framings split alike.

    python -m benchmarks.few_shot --model vision/weights/pbc-bionet-lite0-v7.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from benchmarks.paths import LISC, WORK
from core.settings import DEFAULT_MODEL_PATH
from vision.data import index_image_folder
from vision.field.analyse import framed_cell
from vision.model.artifact import load_artifact
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.model.rejection import OodDetector
from vision.training.adapt import AdaptConfig, adapt_head, embed_cells, non_cell_features

SIZES = (0, 10, 25, 50, 100)
DRAWS = 3


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        array = np.asarray(image.convert("L").resize((96, 96)), dtype=np.float64)
    normalised: np.ndarray = (array - array.mean()) / (array.std() + 1e-6)
    return normalised


def _copy_match(a: np.ndarray, b: np.ndarray) -> float:
    """Best normalised cross-correlation of ``b`` against ``a`` over shifts and symmetries."""
    spectrum = np.fft.rfft2(a)
    best = -1.0
    for index in range(8):
        turned = np.rot90(b, index % 4)
        turned = turned[:, ::-1] if index >= 4 else turned
        correlation = np.fft.irfft2(spectrum * np.conj(np.fft.rfft2(turned)), s=a.shape)
        best = max(best, float(correlation.max()) / a.size)
    return best


def copy_groups(paths: list[Path], embeddings: torch.Tensor) -> list[int]:
    """A group number per file: a new group starts only where a file matches its predecessor
    neither by pixels (NCC < 0.45) nor by embedding (cosine < 0.85), and a file identical to an
    earlier one, wherever it lies, joins that one's group (LISC holds 69 such sets, 14 of them
    not consecutive). Erring towards merging keeps two copies of one cell from ever landing on
    both sides of the split."""
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    greys = [_grey(p) for p in paths]
    seen = {hashlib.sha256(greys[0].tobytes()).hexdigest(): 0}
    groups, top = [0], 0
    for i in range(1, len(paths)):
        digest = hashlib.sha256(greys[i].tobytes()).hexdigest()
        if digest in seen:
            group = seen[digest]
        elif _copy_match(greys[i - 1], greys[i]) < 0.45 \
                and float(unit[i] @ unit[i - 1]) < 0.85:
            top += 1
            group = top
        else:
            group = groups[-1]
        seen.setdefault(digest, group)
        groups.append(group)
    return groups


class Lab:
    def __init__(self, name: str, pool: list[tuple[torch.Tensor, int, int]],
                 held_out: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.name = name
        self.pool = pool  # (embedding views V x D, label, group)
        self.held_out = held_out  # (features N x D, labels N), one view as serving sees

    def draw(self, total: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings cells x views x D, labels) of ``total`` labelled cells."""
        chosen = self.choose(total, seed)
        return (torch.stack([self.pool[i][0] for i in chosen]),
                torch.tensor([self.pool[i][1] for i in chosen]))

    def choose(self, total: int, seed: int) -> list[int]:
        """``total`` labelled cells, balanced over the pool's classes, one per group first."""
        rng = random.Random(seed)
        by_class: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for index, (_, label, group) in enumerate(self.pool):
            by_class[label][group].append(index)
        queues = {}
        for label, groups in by_class.items():
            order = list(groups.values())
            rng.shuffle(order)
            for members in order:
                rng.shuffle(members)
            # One cell of every group before a second cell of any.
            queues[label] = [m[i] for i in range(max(map(len, order))) for m in order
                             if i < len(m)]
        chosen: list[int] = []
        labels = sorted(queues)
        while len(chosen) < total and any(queues.values()):
            for label in labels:
                if queues[label] and len(chosen) < total:
                    chosen.append(queues[label].pop(0))
        return chosen


Framing = Callable[[Image.Image], Image.Image]
FRAMINGS: dict[str, Framing] = {"as-given": lambda image: image, "path": framed_cell}


def _embed(model: EfficientNetLite, paths: list[Path], preprocess: Preprocessing,
           views: int, framing: Framing) -> torch.Tensor:
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(framing(image.convert("RGB")))
    return embed_cells(model, images, preprocess, views, lambda _: None)


# Caches holding a LISC split name it by this: version 2 groups identical files far apart.
SPLIT_VERSION = 2


def halved_copy_groups(paths: list[Path], labels: list[int], embeddings: torch.Tensor,
                       ) -> tuple[list[tuple[int, int, int]], list[int]]:
    """LISC's split: per class, the first half of its copy groups (``copy_groups``) pooled as
    (index, label, group), the rest held out (indices)."""
    pool: list[tuple[int, int, int]] = []
    held: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, own in enumerate(labels) if own == label]
        groups = copy_groups([paths[i] for i in members], embeddings[members])
        half = (max(groups) + 1) // 2
        for i, group in zip(members, groups, strict=True):
            if group < half:
                pool.append((i, label, group))
            else:
                held.append(i)
    return pool, held


def lisc_lab(model: EfficientNetLite, preprocess: Preprocessing, classes: list[str],
             views: int, framing: Framing) -> Lab:
    samples = index_image_folder(LISC, classes)
    paths = [s.path for s in samples]
    # Copies are grouped by the images as given: the framing must not decide the split.
    single = _embed(model, paths, preprocess, 1, FRAMINGS["as-given"])[:, 0]
    pool_members, held = halved_copy_groups(paths, [s.label for s in samples], single)
    held_labels = [samples[i].label for i in held]
    held_embedded = single[held] if framing is FRAMINGS["as-given"] \
        else _embed(model, [paths[i] for i in held], preprocess, 1, framing)[:, 0]
    # Only the pool needs the other views; the held-out cells are scored as serving sees them.
    pooled = _embed(model, [paths[i] for i, _, _ in pool_members], preprocess, views, framing)
    pool = [(pooled[k], label, group) for k, (_, label, group) in enumerate(pool_members)]
    return Lab("lisc", pool, (held_embedded, torch.tensor(held_labels)))


def folder_lab(name: str, pool_root: Path, held_root: Path, model: EfficientNetLite,
               preprocess: Preprocessing, classes: list[str], views: int,
               framing: Framing) -> Lab:
    pool_samples = index_image_folder(pool_root, classes)
    held_samples = index_image_folder(held_root, classes)
    pool_embedded = _embed(model, [s.path for s in pool_samples], preprocess, views, framing)
    held_embedded = _embed(model, [s.path for s in held_samples], preprocess, 1, framing)[:, 0]
    pool = [(pool_embedded[i], s.label, i) for i, s in enumerate(pool_samples)]
    return Lab(name, pool, (held_embedded, torch.tensor([s.label for s in held_samples])))


def save_labs(labs: list[Lab], path: Path) -> None:
    """The embeddings, so that another adaptation recipe is measured in seconds."""
    tensors: dict[str, torch.Tensor] = {}
    for lab in labs:
        tensors |= {f"{lab.name}.pool": torch.stack([p[0] for p in lab.pool]),
                    f"{lab.name}.pool_labels": torch.tensor([p[1] for p in lab.pool]),
                    f"{lab.name}.pool_groups": torch.tensor([p[2] for p in lab.pool]),
                    f"{lab.name}.held": lab.held_out[0].contiguous(),
                    f"{lab.name}.held_labels": lab.held_out[1]}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))


def load_labs(path: Path) -> list[Lab] | None:
    if not path.exists():
        return None
    tensors = load_file(str(path))
    names = sorted({key.split(".")[0] for key in tensors}, key=lambda n: n != "lisc")
    return [Lab(name, [(e, int(label), int(group)) for e, label, group in zip(
        tensors[f"{name}.pool"], tensors[f"{name}.pool_labels"],
        tensors[f"{name}.pool_groups"], strict=True)],
        (tensors[f"{name}.held"], tensors[f"{name}.held_labels"])) for name in names]


def score(head: torch.nn.Linear, detector: OodDetector, temperature: float,
          features: torch.Tensor, labels: torch.Tensor,
          non_cells: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        probabilities = (head(features) / temperature).softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    labelled = detector.accepts(features)
    right = predicted == labels
    confident = labelled & (confidence >= 0.9)
    return {
        "accuracy": float((right & labelled).float().mean()),
        "accuracy_if_all_labelled": float(right.float().mean()),
        "labelled": float(labelled.float().mean()),
        "wrong_at_90": float((~right[confident]).float().mean()) if confident.any() else 0.0,
        "non_cells_accepted": float(detector.accepts(non_cells).float().mean()),
    }


def curve(lab: Lab, model: EfficientNetLite, detector: OodDetector, temperature: float,
          config: AdaptConfig, non_cells: torch.Tensor) -> list[dict[str, float]]:
    rows = []
    for size in SIZES:
        if size == 0:
            rows.append({"cells": 0, **score(model.classifier, detector, temperature,
                                              *lab.held_out, non_cells)})
            continue
        draws = []
        for seed in range(DRAWS):
            embedded, labels = lab.draw(size, seed)
            fitted = adapt_head(model.classifier, embedded, labels, detector, temperature,
                                replace(config, seed=seed), lambda _: None,
                                non_cells=non_cells)
            draws.append(score(fitted.head, fitted.detector, fitted.temperature,
                               *lab.held_out, non_cells))
        rows.append({"cells": size, **{key: float(np.mean([d[key] for d in draws]))
                                       for key in draws[0]}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--bionet-cells", type=Path, default=WORK / "cells" / "bionet")
    parser.add_argument("--views", type=int, default=AdaptConfig.views,
                        help="symmetries per labelled cell (1-8)")
    parser.add_argument("--framing", choices=sorted(FRAMINGS), default="as-given",
                        help="each cell as given, or framed as the analysis path frames it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, card, detector = load_artifact(args.model)
    assert detector is not None, "the model has no rejection step"
    config = AdaptConfig(views=args.views)
    framing = FRAMINGS[args.framing]
    suffix = "" if args.framing == "as-given" else f"-{args.framing}"
    cache = WORK / "cache" / (f"few-shot-v{SPLIT_VERSION}-{card.sha256[:16]}-{config.views}"
                              f"{suffix}.safetensors")
    labs = load_labs(cache)
    if labs is None:
        labs = [lisc_lab(model, card.preprocess, card.classes, config.views, framing)]
        if args.bionet_cells.is_dir():
            labs.append(folder_lab("bionet", args.bionet_cells / "val",
                                   args.bionet_cells / "test", model, card.preprocess,
                                   card.classes, config.views, framing))
        save_labs(labs, cache)
    # Images of no blood cell: the share an adapted model lets through (the base model's, 0).
    non_cells = non_cell_features(model, card.preprocess)
    results = {}
    print(f"model {card.version}, {config.views} view(s) per labelled cell, "
          f"cells {args.framing}")
    print(f"{'lab':8s} {'cells':>5s} {'accuracy':>9s} {'if all labelled':>16s} "
          f"{'labelled':>9s} {'wrong >= 90%':>13s} {'non-cells in':>13s}")
    for lab in labs:
        pool_groups = len({(label, group) for _, label, group in lab.pool})
        print(f"# {lab.name}: pool {len(lab.pool)} images in {pool_groups} cell groups, "
              f"{len(lab.held_out[1])} held out")
        results[lab.name] = curve(lab, model, detector, card.temperature, config, non_cells)
        for row in results[lab.name]:
            print(f"{lab.name:8s} {row['cells']:5d} {row['accuracy']:9.1%} "
                  f"{row['accuracy_if_all_labelled']:16.1%} {row['labelled']:9.1%} "
                  f"{row['wrong_at_90']:13.1%} {row['non_cells_accepted']:13.1%}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": card.version, "labs": results}, indent=2))


if __name__ == "__main__":
    main()
