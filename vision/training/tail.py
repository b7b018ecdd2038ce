"""Adapting the network's last blocks, not only its head, to one laboratory's labelled cells.

A head on frozen features can only re-weigh what the base network already sees; another
laboratory's stain and camera move cells in directions the base features were never asked to
tell apart (LISC's large lymphocytes and monocytes), and head-only adaptation saturates there.
The last ``blocks`` MBConv blocks, the 1x1 head convolution, their normalisation statistics and
the classifier learn instead, on two CPU cores in minutes, because:

- everything before them is frozen, so each cell passes through the frozen trunk once per view
  and the activations are kept (``trunk``): the augmentation (stain, hue, white balance, blur,
  zoom from tight to wide framing, JPEG, the square's symmetries) is drawn up front, ``views``
  draws a cell;
- the base classes are kept by replay with distillation: a few of the base model's own training
  cells, through the same trunk, with the base model's answers as the targets (learning without
  forgetting), so a laboratory that labels five classes keeps the other three and PBC keeps its
  accuracy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from vision.data import index_image_folder, subsample
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing, square_crop
from vision.model.rejection import OodDetector
from vision.training.adapt import capped_threshold, non_cell_features, two_folds
from vision.training.augment import AugmentConfig, augment_batch, centre_batch, normalise
from vision.training.calibration import fit_temperature
from vision.training.features import Progress


@dataclass(frozen=True)
class TailConfig:
    # Trailing MBConv blocks that learn. Lite0's last four (three of the 192-wide stage and the
    # 320-wide one) cost 0.44 s a step of 64 cells on two cores; all five of the 192-wide stage
    # 0.60 s, since the first runs at twice the resolution.
    blocks: int = 4
    views: int = 12  # augmented views of each labelled cell, the first as serving sees it
    steps: int = 300
    batch: int = 32  # the laboratory's views a step; as many replayed base cells beside them
    lr: float = 3e-4
    head_lr: float = 3e-3
    weight_decay: float = 1e-4
    distil_weight: float = 1.0
    distil_temperature: float = 2.0
    hue: float = 0.25
    # The adapted tail's weights (and statistics) are taken this far from the base model's
    # towards the learnt ones (weight-space ensembling, Wortsman et al. 2022, "WiSE-FT"): on
    # LISC's cells (v7, 10 a class) 1.0 cost PBC val half a point (98.62% against 99.12% of
    # 800 cells), 0.4 a tenth (99.00%) and kept most of the gain (89.8% of LISC's held-out
    # cells against 90.9%; the head alone 85.6%). Replay, distillation and frozen statistics
    # had kept none of PBC's half point.
    interpolate: float = 0.4
    seed: int = 0

    @classmethod
    def scaled(cls, cells: int) -> TailConfig:
        """Steps in proportion to the cells (six a cell, 30 to 300), and batches of at most
        four views a cell: a dozen cells are learnt in well under a minute on two cores, a
        hundred in a few."""
        return cls(steps=min(cls.steps, max(30, 6 * cells)), batch=min(cls.batch, 4 * cells))


def _squares(images: Sequence[Image.Image], preprocess: Preprocessing) -> torch.Tensor:
    """uint8 N x 3 x S x S squares as a training cache holds them (S: the serving resize)."""
    arrays = [torch.frombuffer(bytearray(square_crop(image, preprocess.resize).tobytes()),
                               dtype=torch.uint8).view(preprocess.resize, preprocess.resize, 3)
              for image in images]
    return torch.stack(arrays).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def trunk(model: EfficientNetLite, x: torch.Tensor, blocks: int) -> torch.Tensor:
    """The activations entering the last ``blocks`` blocks, in eval mode."""
    model.eval()
    # Depthwise convolutions learn about a third faster channels-last on the CPU.
    return model.trunk(x, len(model.blocks) - blocks).contiguous(
        memory_format=torch.channels_last)


def tail_features(model: EfficientNetLite, activations: torch.Tensor, blocks: int) -> torch.Tensor:
    """The pooled embedding (``EfficientNetLite.features``) from the trunk's activations."""
    return model.features_from(activations, len(model.blocks) - blocks)


def tail_logits(model: EfficientNetLite, activations: torch.Tensor, blocks: int) -> torch.Tensor:
    logits: torch.Tensor = model.classifier(model.dropout(tail_features(model, activations,
                                                                        blocks)))
    return logits


@torch.no_grad()
def cell_views(model: EfficientNetLite, images: Sequence[Image.Image],
               preprocess: Preprocessing, config: TailConfig, progress: Progress,
               augment: AugmentConfig | None = None, chunk: int = 16) -> torch.Tensor:
    """Trunk activations of ``config.views`` views of each cell: N x V x C x H x W, view 0 as
    serving sees the cell, the others augmented."""
    augment = augment or AugmentConfig(hue=config.hue, zoom=0.25)
    generator = torch.Generator().manual_seed(config.seed)
    out = []
    for start in range(0, len(images), chunk):
        squares = _squares(images[start:start + chunk], preprocess)
        views = [centre_batch(squares, preprocess.crop)]
        views += [augment_batch(squares, preprocess.crop, augment, generator)
                  for _ in range(config.views - 1)]
        stacked = torch.stack(views, dim=1)  # n x V x 3 x H x W
        acts = trunk(model, normalise(stacked.flatten(0, 1)), config.blocks)
        out.append(acts.view(len(squares), config.views, *acts.shape[1:]))
        progress(f"  views of {min(start + chunk, len(images))}/{len(images)} cells")
    return torch.cat(out)


@dataclass(frozen=True)
class BaseReplay:
    """Base training cells through the trunk, with the base model's logits for them."""

    activations: torch.Tensor  # N x C x H x W
    logits: torch.Tensor  # N x classes
    labels: torch.Tensor  # their own labels (the refitted rejection step's base classes)


@torch.no_grad()
def base_replay(model: EfficientNetLite, images: Sequence[Image.Image], labels: torch.Tensor,
                preprocess: Preprocessing, blocks: int) -> BaseReplay:
    acts = torch.cat([trunk(model, preprocess.batch(images[i:i + 16]), blocks)
                      for i in range(0, len(images), 16)])
    model.eval()
    return BaseReplay(acts, tail_logits(model, acts, blocks), labels)


def fit_tail(model: EfficientNetLite, views: torch.Tensor, labels: torch.Tensor,
             replay: BaseReplay, config: TailConfig, progress: Progress) -> EfficientNetLite:
    """A copy of ``model`` whose last ``config.blocks`` blocks, head convolution and classifier
    learnt these cells' views (``cell_views``) while keeping the base answers on ``replay``;
    unmixed (``mixed`` takes it part of the way, as ``adapt_tails`` does)."""
    adapted = copy.deepcopy(model).to(memory_format=torch.channels_last)
    tail = [*adapted.blocks[len(adapted.blocks) - config.blocks:], adapted.head]
    body = [p for module in tail for p in module.parameters()]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": config.lr},
         {"params": adapted.classifier.parameters(), "lr": config.head_lr}],
        weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[config.lr, config.head_lr], total_steps=config.steps,
        pct_start=0.15)
    flat = views.flatten(0, 1)
    flat_labels = labels.repeat_interleave(views.shape[1])
    generator = torch.Generator().manual_seed(config.seed)
    adapted.train()
    for module in adapted.modules():  # the frozen trunk never runs here, but keep it still
        module.requires_grad_(False)
    for p in [*body, *adapted.classifier.parameters()]:
        p.requires_grad_(True)
    t = config.distil_temperature
    for step in range(config.steps):
        lab = torch.randint(len(flat), (config.batch,), generator=generator)
        base = torch.randint(len(replay.activations), (config.batch,), generator=generator)
        logits = tail_logits(adapted, torch.cat([flat[lab], replay.activations[base]]),
                             config.blocks)
        loss = F.cross_entropy(logits[:config.batch], flat_labels[lab])
        loss = loss + config.distil_weight * t * t * F.kl_div(
            F.log_softmax(logits[config.batch:] / t, dim=1),
            F.softmax(replay.logits[base] / t, dim=1), reduction="batchmean")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            progress(f"  tail step {step + 1}/{config.steps}: loss {float(loss.detach()):.4f}")
    for p in adapted.parameters():
        p.requires_grad_(True)
    return adapted.eval()


def mixed(base: EfficientNetLite, adapted: EfficientNetLite,
          interpolate: float) -> EfficientNetLite:
    """``adapted``'s weights taken ``interpolate`` of the way from ``base``'s (WiSE-FT: 1 is
    ``adapted`` itself); a copy, ``adapted`` is left as it is."""
    if interpolate >= 1:
        return adapted
    start = base.state_dict()
    result = copy.deepcopy(adapted)
    result.load_state_dict({
        name: start[name] + interpolate * (value - start[name])
        if value.is_floating_point() else value
        for name, value in adapted.state_dict().items()})
    return result.eval()


@torch.no_grad()
def _features(model: EfficientNetLite, activations: torch.Tensor, blocks: int,
              chunk: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([tail_features(model, activations[i:i + chunk], blocks)
                      for i in range(0, len(activations), chunk)])


def refit_detector(model: EfficientNetLite, views: torch.Tensor, labels: torch.Tensor,
                   replay: BaseReplay, blocks: int, shrinkage: float = 0.1) -> OodDetector:
    """The rejection step's class means and covariance in the adapted network's feature space
    (its threshold is the caller's): the base classes' means from the replayed base cells, the
    laboratory's from its cells, one covariance from both scatters (the augmented views
    included: they are how the laboratory's cells vary).

    A few hundred cells estimate a 1280-wide covariance poorly, so it is shrunk towards its
    mean variance, by a tenth: on LISC (v7, 10 cells a class) that kept the laboratory's held-out
    cells nearer than every image of no blood cell for 90% of them, against 83% at a
    hundredth."""
    base = _features(model, replay.activations, blocks).double()
    lab = _features(model, views.flatten(0, 1), blocks).double()
    lab_labels = labels.repeat_interleave(views.shape[1])
    classes = int(replay.logits.shape[1])
    means = torch.stack([base[replay.labels == c].mean(dim=0) for c in range(classes)])
    present = lab_labels.unique()
    lab_means = torch.stack([lab[lab_labels == c].mean(dim=0) for c in present])
    centred = torch.cat([base - means[replay.labels],
                         lab - lab_means[torch.searchsorted(present, lab_labels)]])
    covariance = centred.T @ centred / len(centred)
    scale = covariance.diagonal().mean().clamp_min(1e-6)
    covariance += shrinkage * scale * torch.eye(covariance.shape[0], dtype=torch.float64)
    precision = torch.linalg.inv(covariance)
    return OodDetector(torch.cat([means, lab_means]).float(),
                       ((precision + precision.T) / 2).float(), float("inf"))


def replay_cells(train: Path, classes: Sequence[str], seed: int,
                 per_class: int = 100) -> list[tuple[Image.Image, int]]:
    """A hundred of the base model's own training cells a class (an image folder; 40 kept one
    PBC val cell in 800 fewer, on LISC's cells, v7), replayed so that
    the laboratory's cells do not make the tail forget the base data; none where there is no
    such folder, or it lacks a class (the refitted rejection step needs every class's cells)."""
    if not train.is_dir():
        return []
    samples = subsample(index_image_folder(train, list(classes)), per_class * len(classes), seed)
    if {s.label for s in samples} != set(range(len(classes))):
        return []
    cells = []
    for sample in samples:
        with Image.open(sample.path) as image:
            cells.append((image.convert("RGB"), sample.label))
    return cells


@dataclass(frozen=True)
class TailAdapted:
    model: EfficientNetLite
    detector: OodDetector
    temperature: float


def adapt_tail(model: EfficientNetLite, images: Sequence[Image.Image], labels: torch.Tensor,
               base_images: Sequence[Image.Image], base_labels: torch.Tensor,
               preprocess: Preprocessing, config: TailConfig, progress: Progress,
               base_temperature: float) -> TailAdapted:
    """``model``'s tail adapted to these labelled cells, with its rejection step refitted and its
    temperature cross-fitted: a tail fitted on half the cells judges the other half, and the
    other way round (a network is sure of the cells it learnt)."""
    return adapt_tails(model, images, labels, base_images, base_labels, preprocess, config,
                       progress, base_temperature, [config.interpolate])[config.interpolate]


def adapt_tails(model: EfficientNetLite, images: Sequence[Image.Image], labels: torch.Tensor,
                base_images: Sequence[Image.Image], base_labels: torch.Tensor,
                preprocess: Preprocessing, config: TailConfig, progress: Progress,
                base_temperature: float, interpolations: Sequence[float],
                ) -> dict[float, TailAdapted]:
    """``adapt_tail`` at each of ``interpolations`` (``TailConfig.interpolate``), from one
    learning: only the mixing, the confidence and the rejection step are redone for each."""
    progress(f"views of {len(images)} labelled cells x {config.views}")
    views = cell_views(model, images, preprocess, config, progress)
    progress(f"the base model's answers on {len(base_images)} of its own cells")
    replay = base_replay(model, base_images, base_labels, preprocess, config.blocks)
    learnt = fit_tail(model, views, labels, replay, config, progress)
    halves = two_folds(labels)
    folds = []
    if min(len(h) for h in halves) >= 2:
        for number, (fitted, judged) in enumerate((halves, halves[::-1]), start=1):
            progress(f"cross-fitting the confidence and the rejection: half {number} of 2")
            # Half the cells, half the steps: the folds only judge how sure to be.
            folds.append((fitted, judged, fit_tail(
                model, views[fitted], labels[fitted], replay,
                replace(config, steps=max(1, config.steps // 2)), lambda _: None)))
    results = {}
    for interpolate in interpolations:
        temperature = base_temperature
        judged_scores, logits, targets = [], [], []
        for fitted, judged, fold_learnt in folds:
            fold = mixed(model, fold_learnt, interpolate)
            with torch.no_grad():
                logits.append(tail_logits(fold, views[judged, 0], config.blocks))
                fold_detector = refit_detector(fold, views[fitted], labels[fitted], replay,
                                               config.blocks)
                judged_scores.append(fold_detector.scores(
                    _features(fold, views[judged, 0], config.blocks)))
            targets.append(labels[judged])
        if folds:
            temperature = min(20.0, max(0.5, fit_temperature(torch.cat(logits),
                                                             torch.cat(targets))))
        progress(f"refitting the rejection step ({interpolate:g} of the way)")
        adapted = mixed(model, learnt, interpolate)
        non_cells = non_cell_features(adapted, preprocess)
        detector = refit_detector(adapted, views, labels, replay, config.blocks)
        # Cells the network did not learn lie far from means fitted on a few others: the
        # threshold accepts 95% of the cross-fitted ones, never an image of no blood cell
        # (without folds, as many as that allows).
        wanted = float(torch.quantile(torch.cat(judged_scores).double(), 0.95)) \
            if judged_scores else math.inf
        detector = replace(detector,
                           threshold=capped_threshold(detector, wanted, 0.0, non_cells))
        progress(f"  temperature {temperature:.2f}, threshold {detector.threshold:.0f}")
        results[interpolate] = TailAdapted(adapted, detector, temperature)
    return results
