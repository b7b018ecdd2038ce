"""Close-ups from any laboratory: 256 x 256 tiles cut around the boxed white cells of Bio-Net's
and BCCD's fields, at the field's own scale and zoomed 2x, each read as a photo on its own.

    python -m benchmarks.close_up_tiles [--sets bionet-val bccd-val] [--limit N]
        [--variants clean green-cyan yellow washed-out phone] [--sheet PNG]
        [--zooms 1 2] [--no-pairs]

Every white-cell box with at least half its area in the tile is a white cell the tile holds; the
answer's classified cells are matched one to one at IoU >= 0.5 (recall over the boxes, precision
over the answer's cells). A white cell with less than half of it in the tile is neither asked
for nor held against the answer: a cell the answer boxes at its clipped part is not counted. A
tile holding a white cell answered "not recognised", or with the whole image as its one box,
counts as "not recognised". Tiles whose white cell would not fit are left out (BCCD's cells
zoomed 2x). *Variants*: the tile as cut; its background tinted as other laboratories' are (a
white balance towards green-cyan, or yellow); washed out (every optical density 0.4 of its own,
as over-exposure or a pale stain leaves it); as a phone takes it through an eyepiece (warm cast,
eyepiece circle, defocus, 6x upscale, JPEG q40). Prints a Markdown table; BENCHMARKS.md keeps
the last run.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.paths import BCCD, BIONET
from benchmarks.phone_conditions import colour_cast, defocus, jpeg, vignette
from core.settings import DEFAULT_MODEL_PATH, DEFAULT_RED_CELL_MODEL_PATH
from lab import bccd, bionet
from lab.bccd import Annotated, iou, match
from vision.field.analyse import analyse
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.results import Analysis
from vision.labels import NOT_RECOGNISED
from vision.model.classifier import CellClassifier

TILE = 256
# Per-channel gains that turn a white background into another laboratory's tint.
TINTS = {"green-cyan": (0.86, 1.0, 0.96), "yellow": (1.0, 0.97, 0.78)}
# Bio-Net's red cells are 61 px across at the median of its val fields, BCCD's 108: with
# ``--zooms 0.75`` they are the size (about 50 px) of the close-ups issue 47's laboratory sends.
ZOOMS = (1.0, 2.0)
# Two white cells no further apart than this (their joint box's side, in the field's pixels)
# share a tile.
PAIR_SPAN = 480
FADED = 0.4
Box = tuple[int, int, int, int]
READERS = {"bionet": (bionet.read_split, BIONET), "bccd": (bccd.read_split, BCCD)}


@dataclass(frozen=True)
class Tile:
    image: Image.Image
    boxes: list[Box]  # the white cells it holds, in its pixels
    source: str
    cut: list[Box] = field(default_factory=list)  # those it holds less than half of, clipped


def _clipped(box: Box, window: Box) -> tuple[Box, float] | None:
    """``box`` clipped to ``window``, in the window's pixels, and the share of its area inside;
    None if none is."""
    x0, y0 = max(box[0], window[0]), max(box[1], window[1])
    x1, y1 = min(box[2], window[2]), min(box[3], window[3])
    if x1 <= x0 or y1 <= y0:
        return None
    share = (x1 - x0) * (y1 - y0) / ((box[2] - box[0]) * (box[3] - box[1]))
    return (x0 - window[0], y0 - window[1], x1 - window[0], y1 - window[1]), share


# A tile's boxes by kind: "wbc" the white cells it holds, "cut" those it holds less than half of.
Boxes = dict[str, list[Box]]


def tinted(gains: tuple[float, float, float]) -> Variant:
    def apply(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
        array = np.asarray(image, dtype=np.float32) * np.array(gains, dtype=np.float32)
        return Image.fromarray(array.clip(0, 255).astype(np.uint8)), boxes
    return apply


def through_a_phone(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """Warm cast, the eyepiece's dark circle, defocus, a 6x upscale, JPEG q40."""
    mapped: dict[str, list[tuple[int, int, int, int]]] = dict(boxes)
    for step in (colour_cast, vignette, defocus):
        image, mapped = step(image, mapped)
    image = image.resize((image.width * 6, image.height * 6), Image.Resampling.BICUBIC)
    image, _ = jpeg(image, {})
    return image, {kind: [(b[0] * 6, b[1] * 6, b[2] * 6, b[3] * 6) for b in kept]
                   for kind, kept in mapped.items()}


def washed_out(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
    """Every optical density (relative to the tile's background) at ``FADED`` of its own."""
    array = np.asarray(image, dtype=np.float32)
    background = np.percentile(array.reshape(-1, 3), 90, axis=0).clip(1, None)
    ratio = np.clip(array / background, 0.02, 1.0)
    faded = np.where(array < background, background * ratio ** FADED, array)
    return Image.fromarray(faded.clip(0, 255).astype(np.uint8)), boxes


Variant = Callable[[Image.Image, Boxes], tuple[Image.Image, Boxes]]
VARIANTS: dict[str, Variant] = {"clean": lambda image, boxes: (image, boxes),
                                **{name: tinted(g) for name, g in TINTS.items()},
                                "washed-out": washed_out,
                                "phone": through_a_phone}


def _window_tile(image: Image.Image, boxes: list[Box], window: Box, source: str) -> Tile:
    """The tile ``window`` cuts from ``image`` (resized to ``TILE``), with the white cells it
    holds and those it holds less than half of."""
    clipped = [c for c in (_clipped(b, window) for b in boxes) if c is not None]
    factor = TILE / (window[2] - window[0])
    inside: list[tuple[Box, float]] = [
        ((round(b[0] * factor), round(b[1] * factor), round(b[2] * factor), round(b[3] * factor)),
         share) for b, share in clipped]
    crop = image.crop(window)
    if crop.size != (TILE, TILE):
        crop = crop.resize((TILE, TILE), Image.Resampling.BOX)
    return Tile(crop, [b for b, share in inside if share >= 0.5], source,
                [b for b, share in inside if share < 0.5])


def pair_tiles(item: Annotated, image: Image.Image) -> Iterator[Tile]:
    """Two white cells of a field in one tile: a square around both (reduced to ``TILE`` where
    they lie further apart), kept inside the field. Close-ups holding two white cells are rare
    in the fields (Bio-Net val 7 pairs within 480 px, BCCD val 1)."""
    boxes = item.boxes["wbc"]
    for i, first in enumerate(boxes):
        for second in boxes[i + 1:]:
            x0, y0 = min(first[0], second[0]), min(first[1], second[1])
            x1, y1 = max(first[2], second[2]), max(first[3], second[3])
            side = max(TILE, round(1.1 * max(x1 - x0, y1 - y0)))
            if side > PAIR_SPAN or side > min(image.size):
                continue
            cx = min(max((x0 + x1) // 2, side // 2), image.width - side + side // 2)
            cy = min(max((y0 + y1) // 2, side // 2), image.height - side + side // 2)
            window = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
            yield _window_tile(image, boxes, window, f"{item.image.stem} pair")


def tiles(items: list[Annotated], pairs: bool = True,
          zooms: tuple[float, ...] = ZOOMS) -> Iterator[Tile]:
    """A tile centred on each boxed white cell (kept inside the field) at each zoom, and one
    around each two white cells that fit one (``pair_tiles``)."""
    for item in items:
        field_image = Image.open(item.image).convert("RGB")
        if pairs:
            yield from pair_tiles(item, field_image)
        for zoom in zooms:
            size = (round(field_image.width * zoom), round(field_image.height * zoom))
            image = field_image if zoom == 1 else field_image.resize(
                size, Image.Resampling.BICUBIC if zoom > 1 else Image.Resampling.BOX)
            if min(image.size) < TILE:
                continue
            scaled: list[Box] = [(round(b[0] * zoom), round(b[1] * zoom), round(b[2] * zoom),
                                  round(b[3] * zoom)) for b in item.boxes["wbc"]]
            for box in scaled:
                if max(box[2] - box[0], box[3] - box[1]) > 0.9 * TILE:
                    continue
                cx = min(max((box[0] + box[2]) // 2, TILE // 2), image.width - TILE // 2)
                cy = min(max((box[1] + box[3]) // 2, TILE // 2), image.height - TILE // 2)
                window = (cx - TILE // 2, cy - TILE // 2, cx + TILE // 2, cy + TILE // 2)
                yield _window_tile(image, scaled, window, f"{item.image.stem} x{zoom}")


@dataclass
class Score:
    tiles: int = 0
    boxed: int = 0
    found: int = 0
    answered: int = 0
    not_recognised: int = 0
    refused: int = 0  # by the quality gate (blurred, not a smear): told why, not "not recognised"
    two_cell_tiles: int = 0
    two_cell_tiles_split: int = 0
    ious: list[float] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        return {"tiles": self.tiles, "recall": self.found / max(self.boxed, 1),
                "precision": self.found / max(self.answered, 1),
                "not_recognised": self.not_recognised / max(self.tiles, 1),
                "refused": self.refused / max(self.tiles, 1),
                "median_iou": statistics.median(self.ious) if self.ious else 0.0,
                "two_cell_tiles": self.two_cell_tiles,
                "two_split": self.two_cell_tiles_split / max(self.two_cell_tiles, 1)}


def answered_boxes(analysis: Analysis, size: tuple[int, int]) -> tuple[list[Box], bool]:
    """The white cells an answer names, and whether it said "not recognised" or boxed the whole
    image (no white cell found in it)."""
    whole = (0, 0, *size)
    cells = [c for c in analysis.classified if c.kind in ("wbc", "cell")]
    missed = any(c.label == NOT_RECOGNISED or c.box == whole for c in cells) or not cells
    return [c.box for c in cells if c.label != NOT_RECOGNISED and c.box != whole], missed


def score_tile(score: Score, tile: Tile, analysis: Analysis) -> list[Box]:
    found, missed = answered_boxes(analysis, tile.image.size)
    # A cell boxed where the tile holds less than half of one is not held against the answer.
    found = [f for f in found if not any(iou(f, c) >= 0.5 for c in tile.cut)]
    score.tiles += 1
    score.boxed += len(tile.boxes)
    score.answered += len(found)
    true, _ = match(list(found), list(tile.boxes))
    score.found += true
    refused = analysis.rejected
    score.refused += refused
    score.not_recognised += missed and not refused
    if len(tile.boxes) >= 2:
        score.two_cell_tiles += 1
        score.two_cell_tiles_split += true >= 2
    score.ious += [max((iou(f, t) for f in found), default=0.0) for t in tile.boxes]
    return found


def _sheet(worst: list[tuple[float, Tile, list[Box]]], path: Path) -> None:
    """The tiles answered worst: the annotated boxes green, the answer's red."""
    shown = worst[:24]
    sheet = Image.new("RGB", (6 * TILE, 4 * TILE), "white")
    for index, (_iou, tile, found) in enumerate(shown):
        image = tile.image.copy()
        draw = ImageDraw.Draw(image)
        width = max(1, image.width // TILE)
        for box in tile.boxes:
            draw.rectangle(box, outline=(0, 200, 0), width=3 * width)
        for box in found:
            draw.rectangle(box, outline=(230, 0, 0), width=2 * width)
        image.thumbnail((TILE, TILE))
        ImageDraw.Draw(image).text((4, 4), tile.source, fill="black")
        sheet.paste(image, ((index % 6) * TILE, (index // 6) * TILE))
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.close_up_tiles",
                                     description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["bionet-val", "bccd-val"])
    parser.add_argument("--limit", type=int, help="fields a set, for a quick look")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--sheet", type=Path, help="a PNG of the worst tiles of the last row")
    parser.add_argument("--zooms", nargs="+", type=float, default=list(ZOOMS),
                        help="the fields' scales tiles are cut at (0.75: smaller cells)")
    parser.add_argument("--no-pairs", dest="pairs", action="store_false",
                        help="single-cell tiles only")
    args = parser.parse_args(argv)
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    red_cells = load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH)
    print("| set | variant | tiles | recall | precision | not recognised | refused | median IoU "
          "| two-cell tiles split |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        set_name, split = name.split("-")
        reader, root = READERS[set_name]
        cut = list(tiles(reader(root, split)[:args.limit], args.pairs, tuple(args.zooms)))
        for variant in args.variants:
            score = Score()
            worst = []
            for original in cut:
                image, boxes = VARIANTS[variant](
                    original.image, {"wbc": original.boxes, "cut": original.cut})
                tile = Tile(image, boxes["wbc"], original.source, boxes.get("cut", []))
                found = score_tile(score, tile, analyse(image, classifier, red_cells=red_cells))
                worst.append((min((max((iou(f, t) for f in found), default=0.0)
                                   for t in tile.boxes), default=1.0), tile, found))
            row = score.row()
            print(f"| {name} | {variant} | {row['tiles']:.0f} | {row['recall']:.3f} "
                  f"| {row['precision']:.3f} | {row['not_recognised']:.1%} "
                  f"| {row['refused']:.1%} "
                  f"| {row['median_iou']:.2f} | {row['two_split']:.0%} of "
                  f"{row['two_cell_tiles']:.0f} |", flush=True)
            if args.sheet:
                _sheet(sorted(worst, key=lambda w: w[0]), args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
