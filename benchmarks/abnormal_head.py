"""How far a head on the shipped network's frozen features goes towards naming abnormal cells.

The shipped model knows the eight PBC classes of healthy donors. This probe asks whether its
embeddings already separate DeepAPL's blasts, promonocytes, smudge cells, reactive lymphocytes
and plasma cells: a 13-class linear head is fitted on PBC train and DeepAPL train (patients
apart from val and test), and judged on DeepAPL val patients and PBC val. It chooses nothing for
the product; it says whether a head is enough or the network must move.

    python -m benchmarks.abnormal_head [--views 8] [--split val]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.paths import SHARED_DATA
from core.settings import DEFAULT_MODEL_PATH
from vision.data import Sample, index_image_folder
from vision.model.artifact import load_artifact
from vision.training.adapt import embed_cells
from vision.training.features import cached_features

ABNORMAL = ("blast", "promonocyte", "smudge", "reactive_lymphocyte", "plasma_cell")
BLAST_LIKE = ("blast", "promonocyte")
CACHE = Path("var/cache/abnormal_head")


def deepapl_samples(root: Path, split: str, classes: list[str]) -> list[Sample]:
    with (root / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    return [Sample(root / row["path"], classes.index(row["label"])) for row in rows]


def _say(message: str) -> None:
    print(message, flush=True)


def _views_features(model: torch.nn.Module, samples: list[Sample], preprocess: object,
                    views: int, name: str) -> torch.Tensor:
    path = CACHE / f"{name}-views{views}.pt"
    if path.exists():
        return torch.load(path)
    from PIL import Image

    chunks = []
    for start in range(0, len(samples), 256):
        images = []
        for sample in samples[start:start + 256]:
            with Image.open(sample.path) as image:
                images.append(image.convert("RGB"))
        chunks.append(embed_cells(model, images, preprocess, views,  # type: ignore[arg-type]
                                  lambda _: None))
        _say(f"  {name}: {min(start + 256, len(samples))}/{len(samples)} x {views} views")
    features = torch.cat(chunks)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(features, path)
    return features


def fit(base: torch.nn.Linear, features: torch.Tensor, labels: torch.Tensor, classes: int,
        steps: int, lr: float, seed: int) -> torch.nn.Linear:
    head = torch.nn.Linear(base.in_features, classes)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-2.0)
        head.weight[:base.out_features] = base.weight
        head.bias[:base.out_features] = base.bias
    counts = torch.bincount(labels, minlength=classes).float().clamp(min=1)
    weights = (counts.sum() / counts) / classes
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    torch.manual_seed(seed)
    for step in range(steps):
        loss = F.cross_entropy(head(features), labels, weight=weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (step + 1) % 100 == 0:
            _say(f"  step {step + 1}/{steps}: loss {float(loss):.4f}")
    return head.eval()


def report(name: str, probs: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
    predicted = probs.argmax(dim=1)
    confidence = probs.max(dim=1).values
    normal = [i for i, c in enumerate(classes) if c not in ABNORMAL]
    blast_like = [classes.index(c) for c in BLAST_LIKE]
    is_blast = torch.isin(labels, torch.tensor(blast_like))
    said_blast = torch.isin(predicted, torch.tensor(blast_like))
    is_normal = torch.isin(labels, torch.tensor(normal))
    mature = [classes.index(c) for c in ("lymphocyte", "monocyte", "neutrophil", "eosinophil",
                                         "basophil")]
    confident_mature = torch.isin(predicted, torch.tensor(mature)) & (confidence >= 0.9)
    _say(f"{name}: {len(labels)} cells, accuracy {float((predicted == labels).float().mean()):.3f}")
    if is_blast.any():
        _say(f"  blasts named blast: {int((said_blast & is_blast).sum())}/{int(is_blast.sum())}"
             f" ({float((said_blast & is_blast).sum() / is_blast.sum()):.3f}); "
             f"confidently mature: {int((confident_mature & is_blast).sum())}")
    if said_blast.any():
        _say(f"  of the cells named blast, blasts: "
             f"{float((said_blast & is_blast).sum() / said_blast.sum()):.3f}")
    if is_normal.any():
        _say(f"  normal classes right: "
             f"{float((predicted[is_normal] == labels[is_normal]).float().mean()):.3f}")
    for index, label in enumerate(classes):
        mask = labels == index
        if mask.any():
            named = Counter(classes[int(p)] for p in predicted[mask])
            _say(f"    {label:20s} {int((predicted[mask] == index).sum()):4d}/{int(mask.sum()):4d}"
                 f"  {dict(named.most_common(3))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--views", type=int, default=1, help="dihedral views of DeepAPL train")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--deepapl-weight", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.monotonic()
    model, card, _ = load_artifact(args.model)
    classes = [*card.classes, *ABNORMAL]
    preprocess = card.preprocess
    pbc = SHARED_DATA / "pbc"
    deepapl = SHARED_DATA / "deepapl"
    pbc_train = index_image_folder(pbc / "train", card.classes)
    pbc_val = index_image_folder(pbc / "val", card.classes)
    apl_train = deepapl_samples(deepapl, "train", classes)
    apl_judged = deepapl_samples(deepapl, args.split, classes)
    _say(f"PBC train {len(pbc_train)}, DeepAPL train {len(apl_train)}, "
         f"DeepAPL {args.split} {len(apl_judged)}")
    f_pbc, y_pbc = cached_features(CACHE / "pbc-train.safetensors", model, pbc_train,
                                   preprocess, _say)
    f_pbc_val, y_pbc_val = cached_features(CACHE / "pbc-val.safetensors", model, pbc_val,
                                           preprocess, _say)
    f_apl = _views_features(model, apl_train, preprocess, args.views, "deepapl-train")
    y_apl = torch.tensor([s.label for s in apl_train])
    f_judged, y_judged = cached_features(CACHE / f"deepapl-{args.split}.safetensors", model,
                                         apl_judged, preprocess, _say)
    base = model.classifier
    with torch.no_grad():
        before = F.softmax(base(f_judged) / card.temperature, dim=1)
    padded = torch.cat([before, torch.zeros(len(before), len(ABNORMAL))], dim=1)
    report(f"shipped head, DeepAPL {args.split}", padded, y_judged, classes)
    repeat = max(1, round(args.deepapl_weight))
    features = torch.cat([f_pbc, *[f_apl.flatten(0, 1)] * repeat])
    labels = torch.cat([y_pbc, *[y_apl.repeat_interleave(f_apl.shape[1])] * repeat])
    head = fit(base, features, labels, len(classes), args.steps, args.lr, seed=0)
    with torch.no_grad():
        after = F.softmax(head(f_judged) / card.temperature, dim=1)
        pbc_after = F.softmax(head(f_pbc_val) / card.temperature, dim=1)
    report(f"13-class head, DeepAPL {args.split}", after, y_judged, classes)
    pbc_pred = pbc_after.argmax(dim=1)
    _say(f"PBC val: accuracy {float((pbc_pred == y_pbc_val).float().mean()):.4f}, named blast "
         f"{int(torch.isin(pbc_pred, torch.tensor([8, 9])).sum())}/{len(y_pbc_val)}")
    _say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
