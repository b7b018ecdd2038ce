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
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from benchmarks.few_shot import Lab, copy_groups
from benchmarks.paths import LISC, PBC, SHARED_DATA, WORK
from vision.data import Sample, index_image_folder, subsample
from vision.field.analyse import framed_cell
from vision.model.artifact import load_artifact
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.training.adapt import AdaptConfig, adapt_head, embed_cells, non_cell_features
from vision.training.tail import TailConfig, base_replay, cell_views, fit_tail, tail_logits, trunk


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
    pool, held = [], []
    for label in sorted({s.label for s in samples}):
        members = [i for i, s in enumerate(samples) if s.label == label]
        groups = copy_groups([paths[i] for i in members], single[members])
        half = (groups[-1] + 1) // 2
        for i, group in zip(members, groups, strict=True):
            (pool.append((paths[i], label, group)) if group < half
             else held.append((paths[i], label)))
    return pool, held


def folder_split(pool_root: Path, held_root: Path, classes: list[str]) -> tuple[
        list[tuple[Path, int, int]], list[tuple[Path, int]]]:
    pool = [(s.path, s.label, i) for i, s in enumerate(index_image_folder(pool_root, classes))]
    held = [(s.path, s.label) for s in index_image_folder(held_root, classes)]
    return pool, held


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
        pool, held = lisc_split(model, classes, pre)
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
    held_features = model.features(pre.batch(held_images)) if len(held_images) < 0 else \
        torch.cat([model.features(pre.batch(held_images[i:i + 16])).detach()
                   for i in range(0, len(held_images), 16)])
    replay_samples: list[Sample] = subsample(index_image_folder(PBC / "train", classes),
                                             args.pbc_cells * len(classes), 0)
    replay = base_replay(model, _open([s.path for s in replay_samples], False), pre,
                         config.blocks)
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
    base_right = (tail_logits(model.eval(), held_acts, config.blocks).argmax(1) == held_labels)
    print(f"base: held-out {float(base_right.float().mean()):.1%}", flush=True)
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
                probs = (fitted.head(held_features) / fitted.temperature).softmax(1)
            head_conf, head_pred = probs.max(1)
            t1 = time.monotonic()
            views = cell_views(model, images, pre, replace(config, seed=draw), lambda _: None)
            t2 = time.monotonic()
            adapted = fit_tail(model, views, labels, replay, replace(config, seed=draw),
                               lambda line: None)
            t3 = time.monotonic()
            with torch.no_grad():
                tail_probs = tail_logits(adapted, held_acts, config.blocks).softmax(1)
                pbc_right = (tail_logits(adapted, pbc_acts, config.blocks).argmax(1)
                             == pbc_labels).float().mean()
            tail_conf, tail_pred = tail_probs.max(1)

            def wrong90(conf: torch.Tensor, pred: torch.Tensor) -> float:
                sure = conf >= 0.9
                return float((pred[sure] != held_labels[sure]).float().mean()) if sure.any() \
                    else 0.0
            print(f"{args.lab} {size}/class ({len(chosen)} cells) draw {draw}: head "
                  f"{float((head_pred == held_labels).float().mean()):.1%} "
                  f"(wrong@90 {wrong90(head_conf, head_pred):.1%}, {t1 - t0:.0f} s) | tail "
                  f"{float((tail_pred == held_labels).float().mean()):.1%} "
                  f"(wrong@90 {wrong90(tail_conf, tail_pred):.1%}, PBC val {float(pbc_right):.1%},"
                  f" views {t2 - t1:.0f} s, fit {t3 - t2:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
