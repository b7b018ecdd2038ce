"""Research driver: head-only vs tail adaptation to one laboratory, judged on its held-out cells.

For each size (labelled cells a class) and draw: the same labelled cells adapt the head alone
(``vision.training.adapt``, as ``/adapt`` does today) and the network's last blocks
(``vision.training.tail``); both are scored on the laboratory's held-out cells framed as the path
frames them, and the tail model also on PBC val cells (it must not forget PBC).

    python -m lab.tail_adapt --lab lisc --sizes 10 25
    python -m lab.tail_adapt --lab deepapl --sizes 10 25 100
    python -m lab.tail_adapt --lab bionet --model vision/weights/pbc-lite0-ft-v5.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from benchmarks.few_shot import SPLIT_VERSION, Lab, halved_copy_groups
from benchmarks.paths import LISC, PBC, SHARED_DATA, WORK
from vision.data import Sample, index_image_folder, subsample
from vision.field.analyse import framed_cell
from vision.model.artifact import load_artifact
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.model.rejection import OodDetector
from vision.training.adapt import AdaptConfig, adapt_head, embed_cells, non_cell_features
from vision.training.noncell import non_cell_images
from vision.training.tail import TailConfig, adapt_tails, tail_features, tail_logits, trunk


def _open(paths: list[Path], framing: bool) -> list[Image.Image]:
    out = []
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            out.append(framed_cell(rgb) if framing else rgb)
    return out


def lisc_split(model: EfficientNetLite, card_classes: list[str],
               preprocess: Preprocessing) -> tuple[
        list[tuple[Path, int, int]], list[tuple[Path, int]]]:
    samples = index_image_folder(LISC, card_classes)
    paths = [s.path for s in samples]
    single = embed_cells(model, _open(paths, False), preprocess, 1, lambda _: None)[:, 0]
    pooled, held = halved_copy_groups(paths, [s.label for s in samples], single)
    return ([(paths[i], label, group) for i, label, group in pooled],
            [(paths[i], samples[i].label) for i in held])


def _known(root: Path, classes: list[str]) -> list[Sample]:
    """The cells of the classes the model names (DeepAPL's blasts are not v7's to learn)."""
    return [Sample(path, classes.index(folder.name))
            for folder in sorted(root.iterdir()) if folder.name in classes
            for path in sorted(folder.iterdir()) if path.suffix.lower() in (".jpg", ".png")]


def folder_split(pool_root: Path, held_root: Path, classes: list[str]) -> tuple[
        list[tuple[Path, int, int]], list[tuple[Path, int]]]:
    pool = [(s.path, s.label, i) for i, s in enumerate(_known(pool_root, classes))]
    held = [(s.path, s.label) for s in _known(held_root, classes)]
    return pool, held


def score(logits: torch.Tensor, features: torch.Tensor, detector: OodDetector,
          temperature: float, labels: torch.Tensor) -> dict[str, float]:
    """As the path answers: "not recognised" outside the rejection step, flagged below 70%."""
    probabilities = (logits / temperature).softmax(1)
    confidence, predicted = probabilities.max(1)
    labelled = detector.accepts(features)
    right = predicted == labels
    sure = labelled & (confidence >= 0.9)
    return {"accuracy": float((right & labelled).float().mean()),
            "if_all_labelled": float(right.float().mean()),
            "labelled": float(labelled.float().mean()),
            "wrong_at_90": float((~right[sure]).float().mean()) if sure.any() else 0.0}


def _line(name: str, row: dict[str, float]) -> str:
    return (f"{name} {row['accuracy']:.1%} (all labelled {row['if_all_labelled']:.1%}, labelled "
            f"{row['labelled']:.1%}, wrong@90 {row['wrong_at_90']:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", choices=("lisc", "deepapl", "bionet"), required=True)
    parser.add_argument("--model", type=Path,
                        default=Path("vision/weights/pbc-bionet-lite0-v7.safetensors"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=TailConfig.blocks)
    parser.add_argument("--views", type=int, default=TailConfig.views)
    parser.add_argument("--steps", type=int, default=TailConfig.steps)
    parser.add_argument("--lr", type=float, default=TailConfig.lr)
    parser.add_argument("--interpolate", type=float, nargs="+",
                        default=[TailConfig.interpolate],
                        help="how far the learnt tail is taken from the base (1: unmixed); "
                             "several are judged from one learning")
    parser.add_argument("--pbc-cells", type=int, default=40, help="a class, replayed and judged")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, card, detector = load_artifact(args.model)
    assert detector is not None
    classes, pre = card.classes, card.preprocess
    config = TailConfig(blocks=args.blocks, views=args.views, steps=args.steps, lr=args.lr)
    started = time.monotonic()
    if args.lab == "lisc":
        # Grouping LISC's copies takes minutes: the split is kept per model.
        cache = WORK / "cache" / f"lisc-split-v{SPLIT_VERSION}-{card.sha256[:16]}.json"
        if cache.exists():
            stored = json.loads(cache.read_text())
            pool = [(Path(p), label, group) for p, label, group in stored["pool"]]
            held = [(Path(p), label) for p, label in stored["held"]]
        else:
            pool, held = lisc_split(model, classes, pre)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"pool": [(str(p), lb, g) for p, lb, g in pool],
                                         "held": [(str(p), lb) for p, lb in held]}))
    elif args.lab == "deepapl":
        root = SHARED_DATA / "deepapl"
        pool, held = folder_split(root / "train", root / "val", classes)
    else:
        root = WORK / "cells" / "bionet"
        pool, held = folder_split(root / "train", root / "val", classes)
    held_images = _open([p for p, _ in held], True)
    held_labels = torch.tensor([label for _, label in held])
    held_acts = torch.cat([trunk(model, pre.batch(held_images[i:i + 16]), config.blocks)
                           for i in range(0, len(held_images), 16)])
    replay_samples: list[Sample] = subsample(index_image_folder(PBC / "train", classes),
                                             args.pbc_cells * len(classes), 0)
    replay_images = _open([s.path for s in replay_samples], False)
    replay_labels = torch.tensor([s.label for s in replay_samples])
    pbc_val = subsample(index_image_folder(PBC / "val", classes), args.pbc_cells * len(classes), 1)
    pbc_acts = torch.cat([trunk(model, pre.batch(_open([s.path for s in pbc_val[i:i + 16]],
                                                        False)), config.blocks)
                          for i in range(0, len(pbc_val), 16)])
    pbc_labels = torch.tensor([s.label for s in pbc_val])
    non_cells = non_cell_features(model, pre)
    print(f"# {args.lab}: pool {len(pool)}, held out {len(held)} "
          f"(classes {sorted(set(held_labels.tolist()))}); prepared in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    index = Lab(args.lab, [(torch.empty(0), label, group) for _, label, group in pool],
                (torch.empty(0), torch.empty(0)))
    with torch.no_grad():
        base_features = tail_features(model.eval(), held_acts, config.blocks)
        base_pbc = (tail_logits(model, pbc_acts, config.blocks).argmax(1) == pbc_labels)
    print(_line("base:", score(model.classifier(base_features), base_features, detector,
                               card.temperature, held_labels))
          + f", PBC val {float(base_pbc.float().mean()):.1%}", flush=True)
    present = len({label for _, label, _ in pool})
    for size in args.sizes:
        for draw in range(args.draws):
            chosen = index.choose(size * present, draw)
            images = _open([pool[i][0] for i in chosen], True)
            labels = torch.tensor([pool[i][1] for i in chosen])
            t0 = time.monotonic()
            embedded = embed_cells(model, images, pre, 8, lambda _: None)
            fitted = adapt_head(model.classifier, embedded, labels, detector, card.temperature,
                                replace(AdaptConfig(), seed=draw), lambda _: None,
                                non_cells=non_cells)
            with torch.no_grad():
                head = score(fitted.head(base_features), base_features, fitted.detector,
                             fitted.temperature, held_labels)
            t1 = time.monotonic()
            tails = adapt_tails(model, images, labels, replay_images, replay_labels, pre,
                                replace(config, seed=draw), lambda _: None, card.temperature,
                                args.interpolate)
            t2 = time.monotonic()
            # LISC's pool holds 8-30 distinct cells a class, each as several shifted copies:
            # past them, a size adds copies, not cells (``Lab.choose`` takes every group once
            # before any twice), and cross-fitting splits copies of one cell between its halves.
            distinct = len({(pool[i][1], pool[i][2]) for i in chosen})
            print(f"{args.lab} {size}/class ({len(chosen)} cells, {distinct} distinct) "
                  f"draw {draw}: "
                  + _line("head", head) + f" {t1 - t0:.0f} s; tails {t2 - t1:.0f} s",
                  flush=True)
            for interpolate, adapted in tails.items():
                with torch.no_grad():
                    features = tail_features(adapted.model.eval(), held_acts, config.blocks)
                    tail = score(adapted.model.classifier(features), features,
                                 adapted.detector, adapted.temperature, held_labels)
                    pbc_right = (tail_logits(adapted.model, pbc_acts, config.blocks).argmax(1)
                                 == pbc_labels).float().mean()
                    new_features = embed_cells(adapted.model,
                                               [i for _, i in non_cell_images()], pre, 1,
                                               lambda _: None)[:, 0]
                print("  " + _line(f"tail {interpolate:g}", tail)
                      + f", PBC val {float(pbc_right):.1%}, non-cells in "
                      f"{float(adapted.detector.accepts(new_features).float().mean()):.1%}, "
                      f"T {adapted.temperature:.2f}", flush=True)


if __name__ == "__main__":
    main()
