"""Training the red-cell centre network on BCCD fields whose annotation misses some cells.

BCCD leaves many red cells unboxed. Taught naively, a network would learn that those cells are
background and under-count. Here every stride-8 position whose pixels are mostly red-cell stain
outside every annotated box is *ignored* by the loss: neither a centre nor background. Boxed
cells teach what a centre is; the background teaches what is not a cell.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from scipy import ndimage as ndi
from skimage.morphology import disk

from lab.bccd import Annotated, box_mask, red_coverage, score_centres
from vision.field.centre_net import NET_SCALE, STRIDE, CentreNet, at_net_scale, to_input
from vision.field.detect import (
    DetectorParams,
    FieldMasks,
    detect_white_cells,
    red_cell_mask,
    working_masks,
)
from vision.field.learned_red_cells import LearnedRedCells
from vision.field.morphology import fill_holes
from vision.field.scale import image_scale


@dataclass(frozen=True)
class CentreTrainingConfig:
    epochs: int = 24
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    sigma: float = 0.8  # of the centre Gaussian, in stride-8 cells (a red cell spans about 5)
    ignore_share: float = 0.5  # unboxed red-cell pixels in a position's 8x8 patch to ignore it
    scale_jitter: float = 0.15
    # Phone photos through an eyepiece: share of fields given a circular vignette, and JPEG.
    eyepiece_share: float = 0.5
    jpeg_share: float = 0.3
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class Example:
    """One field, white-balanced, with its red-cell boxes and its ignore mask (full pixels)."""

    balanced: np.ndarray  # HxWx3 float32, 0-255
    boxes: np.ndarray  # Kx4 float32, x0 y0 x1 y1
    unboxed_red: np.ndarray  # HxW bool: red-cell stain outside every annotated box


def unboxed_red_cells(masks: FieldMasks, item: Annotated, params: DetectorParams,
                      scale: float = 1.0) -> np.ndarray:
    """Red-cell stain (pale centres filled) outside every annotated box: cells BCCD missed."""
    red = fill_holes(ndi.binary_closing(red_cell_mask(masks, params), structure=disk(2)))
    every_box = [box for kind in ("rbc", "wbc", "platelet") for box in item.boxes[kind]]
    outside: np.ndarray = red & ~box_mask(red.shape, every_box, scale)
    return outside


def working_field(item: Annotated, params: DetectorParams) -> tuple[FieldMasks, float]:
    """An annotated field at the working scale (measured from its red cells), with the factor
    from its own pixels."""
    image = Image.open(item.image).convert("RGB")
    return working_masks(image, image_scale(image).red_cell_px, params)


def make_example(item: Annotated, params: DetectorParams) -> Example:
    """An annotated field at the network's scale."""
    masks, factor = working_field(item, params)
    scale = factor * NET_SCALE
    boxes = np.array(item.boxes["rbc"], dtype=np.float32).reshape(-1, 4) * scale
    height, width = masks.valid.shape
    size = (round(width * NET_SCALE), round(height * NET_SCALE))
    unboxed = Image.fromarray(unboxed_red_cells(masks, item, params, factor).astype(np.uint8)
                              * 255)
    unboxed = unboxed.resize(size, Image.Resampling.BILINEAR)
    return Example(at_net_scale(masks.balanced), boxes, np.asarray(unboxed) >= 128)


def eyepiece(example: Example, centre: tuple[float, float], radius: float) -> Example:
    """The field seen through an eyepiece: black (as balanced) outside a soft-edged circle.

    A cell whose centre is hidden loses its box, as in the phone benchmark's annotation, and
    its visible sliver is ignored by the loss rather than taught as background.
    """
    height, width = example.unboxed_red.shape
    ys, xs = np.mgrid[0:height, 0:width]
    distance = np.hypot(xs - centre[0], ys - centre[1])
    alpha = np.clip(radius - distance + 0.5, 0.0, 1.0)[..., None]
    pixels = example.balanced * alpha + 8.0 * (1 - alpha)
    middles = (example.boxes[:, :2] + example.boxes[:, 2:]) / 2
    seen = np.hypot(middles[:, 0] - centre[0], middles[:, 1] - centre[1]) <= radius
    ignore = example.unboxed_red.copy()
    for x0, y0, x1, y1 in example.boxes[~seen]:
        ignore[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
    return Example(pixels.astype(np.float32), example.boxes[seen], ignore & (distance <= radius))


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                    quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.float32)


def augment(example: Example, rng: np.random.Generator, jitter: float,
            eyepiece_share: float = 0.0, jpeg_share: float = 0.0) -> Example:
    """Flips, a transpose, a scale change, exposure, a little blur, and (as asked) an eyepiece
    vignette and JPEG: boxes follow the image."""
    image, boxes, ignore = example.balanced, example.boxes.copy(), example.unboxed_red
    height, width = ignore.shape
    if rng.random() < 0.5:
        image, ignore = image[:, ::-1], ignore[:, ::-1]
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if rng.random() < 0.5:
        image, ignore = image[::-1], ignore[::-1]
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    if rng.random() < 0.5:
        image, ignore = image.transpose(1, 0, 2), ignore.T
        boxes = boxes[:, [1, 0, 3, 2]]
    scale = float(rng.uniform(1 - jitter, 1 + jitter))
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    size = (round(pil.width * scale), round(pil.height * scale))
    pil = pil.resize(size, Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    ignore_img = Image.fromarray(np.ascontiguousarray(ignore).astype(np.uint8) * 255)
    ignore = np.asarray(ignore_img.resize(size, Image.Resampling.NEAREST)) > 0
    pixels = np.asarray(pil, dtype=np.float32)
    # Exposure and contrast around the balanced white (230), as a different lamp would give.
    gain, contrast = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)
    pixels = 230.0 + (pixels * gain - 230.0) * contrast
    if rng.random() < jpeg_share:
        pixels = _jpeg(pixels, int(rng.integers(30, 91)))
    augmented = Example(pixels, boxes * scale, ignore)
    if rng.random() < eyepiece_share:
        height, width = ignore.shape
        shorter = min(height, width)
        centre = (width / 2 + rng.uniform(-0.05, 0.05) * shorter,
                  height / 2 + rng.uniform(-0.05, 0.05) * shorter)
        augmented = eyepiece(augmented, centre, float(rng.uniform(0.4, 0.55)) * shorter)
    return augmented


def targets(example: Example, sigma: float, ignore_share: float,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap, loss weights, log sizes and the centre mask, all at stride 8 (padded to 16)."""
    height, width = example.unboxed_red.shape
    rows, cols = math.ceil(height / 16) * 2, math.ceil(width / 16) * 2
    heat = np.zeros((rows, cols), np.float32)
    sizes = np.zeros((2, rows, cols), np.float32)
    centre = np.zeros((rows, cols), np.float32)
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
    for x0, y0, x1, y1 in example.boxes:
        cx, cy = (x0 + x1) / 2 / STRIDE - 0.5, (y0 + y1) / 2 / STRIDE - 0.5
        heat = np.maximum(heat, np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)))
        ix, iy = round(cx), round(cy)
        if 0 <= ix < cols and 0 <= iy < rows:
            heat[iy, ix] = 1.0
            centre[iy, ix] = 1.0
            sizes[:, iy, ix] = np.log(np.maximum([(x1 - x0) / STRIDE, (y1 - y0) / STRIDE], 0.5))
    padded = np.zeros((rows * STRIDE, cols * STRIDE), np.float32)
    padded[:height, :width] = example.unboxed_red
    share = padded.reshape(rows, STRIDE, cols, STRIDE).mean(axis=(1, 3))
    weight = np.where((share >= ignore_share) & (heat < 0.5), 0.0, 1.0).astype(np.float32)
    return heat, weight, sizes, centre


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, per centre; ignored positions add nothing."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * positive
    neg = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - positive) * weight
    return (pos.sum() + neg.sum()) / positive.sum().clamp(min=1)


def batch_tensors(examples: Sequence[Example], config: CentreTrainingConfig,
                  ) -> tuple[torch.Tensor, ...]:
    inputs, heats, weights, sizes, centres = [], [], [], [], []
    for example in examples:
        inputs.append(to_input(example.balanced)[0])
        heat, weight, size, centre = targets(example, config.sigma, config.ignore_share)
        heats.append(heat)
        weights.append(weight)
        sizes.append(size)
        centres.append(centre)
    # Fields of one batch differ in size after scale jitter and transposes: pad to the largest.
    height = max(t.shape[1] for t in inputs)
    width = max(t.shape[2] for t in inputs)
    white = 230.0 / 127.5 - 1.0
    images = torch.stack([F.pad(t, (0, width - t.shape[2], 0, height - t.shape[1]), value=white)
                          for t in inputs])

    def stack(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([F.pad(torch.from_numpy(a), (0, width // STRIDE - a.shape[-1],
                                                        0, height // STRIDE - a.shape[-2]))
                            for a in arrays])

    return (images, stack(heats).unsqueeze(1), stack(weights).unsqueeze(1), stack(sizes),
            stack(centres).unsqueeze(1))


def step_loss(model: CentreNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    images, heat, weight, sizes, centre = batch
    logits, log_size = model(images)
    size_loss = (F.l1_loss(log_size, sizes, reduction="none") * centre).sum() / centre.sum().clamp(
        min=1)
    return focal_loss(logits, heat, weight) + 0.5 * size_loss


@dataclass(frozen=True)
class EpochRecord:
    loss: float
    minutes: float | None  # None where an older checkpoint did not keep it


def train_centres(model: CentreNet, examples: Sequence[Example], config: CentreTrainingConfig,
                  checkpoint: Path | None = None,
                  report: Callable[[str], None] = print) -> list[EpochRecord]:
    """Train in place; returns each epoch's mean loss and minutes. Resumes from ``checkpoint``."""
    torch.set_num_threads(config.threads)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = steps_per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step
                                                                                / total)))
    losses: list[float] = []
    minutes: list[float | None] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        losses = [float(v) for v in state["losses"]]
        timed: list[float | None] = [float(v) for v in state.get("minutes", [])]
        untimed: list[float | None] = [None] * (len(losses) - len(timed))
        minutes = untimed + timed
        start_epoch = len(losses)
        report(f"resumed after epoch {start_epoch}")
    began = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        rng = np.random.default_rng(config.seed + epoch)
        order = rng.permutation(len(examples))
        model.train()
        running = []
        epoch_began = time.monotonic()
        for first in range(0, len(order), config.batch_size):
            chosen = [augment(examples[i], rng, config.scale_jitter, config.eyepiece_share,
                              config.jpeg_share)
                      for i in order[first:first + config.batch_size]]
            loss = step_loss(model, batch_tensors(chosen, config))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            running.append(loss.item())
        losses.append(float(np.mean(running)))
        minutes.append((time.monotonic() - epoch_began) / 60)
        done = epoch + 1 - start_epoch
        eta = (time.monotonic() - began) / done * (config.epochs - epoch - 1)
        report(f"epoch {epoch + 1}/{config.epochs} loss {losses[-1]:.3f} "
               f"({(time.monotonic() - began) / done / 60:.1f} min/epoch, ETA {eta / 60:.0f} min)")
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "losses": losses,
                        "minutes": [m for m in minutes if m is not None]}, checkpoint)
    return [EpochRecord(loss, minute) for loss, minute in zip(losses, minutes, strict=True)]


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    recall: float  # of the annotated red cells
    precision: float  # among detections that are known true or false (not unknown)
    well_boxed_abs: float  # mean abs relative count error, fields with coverage >= 0.5
    well_boxed_signed: float
    all_abs: float

    @property
    def f1(self) -> float:
        return 2 * self.recall * self.precision / max(self.recall + self.precision, 1e-9)


def threshold_table(finder: LearnedRedCells, items: Sequence[Annotated],
                    candidates: Sequence[float], params: DetectorParams,
                    well_boxed_at: float = 0.5) -> list[ThresholdRow]:
    """Detection and count errors at each heatmap threshold (the network runs once a field)."""
    errors: dict[float, list[tuple[bool, float]]] = {t: [] for t in candidates}
    tallies = {t: np.zeros(4, int) for t in candidates}  # true, false, unknown, annotated
    for item in items:
        truth = len(item.boxes["rbc"])
        if not truth:
            continue
        masks, scale = working_field(item, params)
        white = detect_white_cells(masks, params)
        well_boxed = red_coverage(red_cell_mask(masks, params), item.boxes["rbc"],
                                  scale) >= well_boxed_at
        unboxed = unboxed_red_cells(masks, item, params, scale)
        boxes = [tuple(round(v * scale) for v in box) for box in item.boxes["rbc"]]
        outputs = finder.outputs(masks)
        for threshold in candidates:
            cells = finder.cells(masks, white, outputs, threshold)
            centres = [d.centre for d in cells]
            true, false, unknown = score_centres(centres, boxes, unboxed)
            tallies[threshold] += np.array([true, false, unknown, truth])
            errors[threshold].append((well_boxed, (len(cells) - truth) / truth))
    rows = []
    for threshold, pairs in errors.items():
        true, false, _, annotated = tallies[threshold]
        boxed = [e for good, e in pairs if good]
        rows.append(ThresholdRow(threshold, true / annotated, true / max(true + false, 1),
                                 float(np.mean(np.abs(boxed))), float(np.mean(boxed)),
                                 float(np.mean([abs(e) for _, e in pairs]))))
    return rows
