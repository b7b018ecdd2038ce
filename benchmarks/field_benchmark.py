"""Field analysis on BCCD test: detection under phone-like conditions, quality gate, speed.

    python -m benchmarks.field_benchmark [--bccd ../shared/data/bccd] [--split test]
        [--red-cells MODEL_STEM | colour] [--red-cells-png PNG] [--unmatched-png PNG]

Prints a Markdown table; BENCHMARKS.md keeps the numbers of the last run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmarks.paths import BCCD
from benchmarks.phone_conditions import CONDITIONS
from core.settings import DEFAULT_MODEL_PATH, DEFAULT_RED_CELL_MODEL_PATH
from lab.bccd import (
    Annotated,
    count_in_boxes,
    judge_centres,
    match,
    read_split,
    red_coverage,
    score_centres,
)
from lab.red_cell_centres import unboxed_red_cells
from vision.field.analyse import analyse
from vision.field.detect import (
    Detection,
    DetectorParams,
    RedCellFinder,
    detect,
    field_masks,
    red_cell_mask,
    working_image,
)
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.quality import measure
from vision.field.scale import image_scale
from vision.model.classifier import CellClassifier


def _red_cell_px(image: Image.Image) -> float:
    """The image's red-cell size as the analysis measures it."""
    return image_scale(image).red_cell_px


def _scored(detections: list[Detection], kind: str, scale: float,
            truth: list[tuple[int, int, int, int]],
            ) -> tuple[list[Detection], list[tuple[int, ...]], int, set[int]]:
    """The detections of one kind, their boxes in the original's pixels, and how they match
    the annotation: (detections, boxes, true positives, indices of the matched ones)."""
    found = [d for d in detections if d.kind == kind]
    predicted = [tuple(round(v / scale) for v in d.box) for d in found]
    tp, used = match(predicted, truth)
    return found, predicted, tp, used


def run_condition(items: list, condition,  # type: ignore[no-untyped-def]
                  red_cells: RedCellFinder | None = None) -> dict[str, float]:
    wbc = [0, 0, 0, 0]  # tp, predicted, truth, unmatched predictions flagged at the border
    platelets = [0, 0, 0]
    # BCCD misses red-cell boxes, so only recall is clean for red cells: a cell it boxed is real.
    red = [0, 0, 0]
    rbc_errors: list[float] = []
    accepted = 0
    for item in items:
        image, boxes = condition(Image.open(item.image).convert("RGB"), item.boxes)
        detections, masks, scale = detect(image, _red_cell_px(image), red_cells=red_cells)
        for kind, counter in (("wbc", wbc), ("platelet", platelets), ("rbc", red)):
            found, predicted, tp, used = _scored(detections, kind, scale, boxes[kind])
            counter[0] += tp
            counter[1] += len(predicted)
            counter[2] += len(boxes[kind])
            if kind == "wbc":
                counter[3] += sum(1 for i, d in enumerate(found) if i not in used and d.at_border)
        truth_rbc = len(boxes["rbc"])
        if truth_rbc:
            rbc_errors.append((sum(d.kind == "rbc" for d in detections) - truth_rbc) / truth_rbc)
        # The gate reads the detector's own masks of the working image, as serving does.
        accepted += measure(masks).passed
    return {
        "wbc_recall": wbc[0] / wbc[2],
        "wbc_precision": wbc[0] / max(wbc[1], 1),
        "wbc_precision_excl_border": wbc[0] / max(wbc[1] - wbc[3], 1),
        "platelet_recall": platelets[0] / platelets[2],
        "platelet_precision": platelets[0] / max(platelets[1], 1),
        "rbc_recall": red[0] / red[2],
        "rbc_mean_rel_error": statistics.mean(rbc_errors),
        "rbc_mean_abs_rel_error": statistics.mean(abs(e) for e in rbc_errors),
        "quality_gate_accepts": accepted / len(items),
    }


def rbc_by_annotation_completeness(items: list, split_at: float = 0.5,  # type: ignore[type-arg]
                                   red_cells: RedCellFinder | None = None,
                                   ) -> dict[str, tuple[int, float, float]]:
    """Red-cell count error on fields whose boxes cover the red cells, and on the others.

    A field's coverage is the share of its red-cell pixels (the detector's own colour rule,
    before any counting) that lie inside some annotated RBC box. Where BCCD left red cells
    unboxed, coverage is low and the annotation under-counts the field.
    """
    params = DetectorParams()
    errors: dict[str, list[float]] = {"complete": [], "incomplete": []}
    for item in items:
        image = Image.open(item.image).convert("RGB")
        detections, masks, scale = detect(image, _red_cell_px(image), params, red_cells)
        truth = len(item.boxes["rbc"])
        if not truth:
            continue
        coverage = red_coverage(red_cell_mask(masks, params), item.boxes["rbc"], scale)
        counted = sum(d.kind == "rbc" for d in detections)
        errors["complete" if coverage >= split_at else "incomplete"].append(
            (counted - truth) / truth)
    return {name: (len(values), statistics.mean(values), statistics.mean(map(abs, values)))
            for name, values in errors.items() if values}


def red_cells_against_gaps(items: list, red_cells: RedCellFinder | None,  # type: ignore[type-arg]
                           picture: Path | None = None, shown: int = 4) -> dict[str, float]:
    """Red-cell detections scored the way the annotation allows (``score_centres``).

    Recall is of BCCD's boxed cells. Precision leaves out the detections that fall on red-cell
    stain BCCD did not box ("unknown": real cells, or not). The count where BCCD looked
    (``count_in_boxes``) is compared with the number of boxes, field by field, as a mean
    relative error, signed and absolute. ``picture`` draws the first
    ``shown`` fields: BCCD's boxes in green, detections true (blue), unknown (orange), false
    (red), for a reader to judge the unknown ones.
    """
    params = DetectorParams()
    tally = np.zeros(4, int)  # true, false, unknown, annotated
    in_boxes: list[float] = []
    tiles = []
    for item in items:
        image = Image.open(item.image).convert("RGB")
        detections, masks, scale = detect(image, _red_cell_px(image), params, red_cells)
        centres = [d.centre for d in detections if d.kind == "rbc"]
        boxes = [tuple(round(v * scale) for v in box) for box in item.boxes["rbc"]]
        unboxed = unboxed_red_cells(masks, item, params, scale)
        true, false, unknown = score_centres(centres, boxes, unboxed)  # type: ignore[arg-type]
        tally += np.array([true, false, unknown, len(boxes)])
        if boxes:
            in_boxes.append((count_in_boxes(centres, boxes) - len(boxes)) / len(boxes))
        if picture is not None and len(tiles) < shown:
            tiles.append(_red_cell_tile(image, item, centres, boxes, unboxed, scale))
    if tiles:
        _save_sheet(tiles, picture, columns=2)  # type: ignore[arg-type]
    true, false, unknown, annotated = (int(v) for v in tally)
    return {"recall": true / annotated, "precision_known": true / max(true + false, 1),
            "unknown_share": unknown / max(true + false + unknown, 1),
            "in_boxes_signed": statistics.mean(in_boxes),
            "in_boxes_abs": statistics.mean(map(abs, in_boxes))}


def _red_cell_tile(image: Image.Image, item: Annotated, centres: list[tuple[float, float]],
                   boxes: list[tuple[int, ...]], unboxed: np.ndarray, scale: float,
                   ) -> Image.Image:
    tile = image.copy()
    draw = ImageDraw.Draw(tile)
    for box in item.boxes["rbc"]:
        draw.rectangle(box, outline=(0, 170, 0), width=2)
    colours = {"true": (0, 60, 255), "unknown": (255, 140, 0), "false": (220, 0, 0)}
    for (x, y), verdict in zip(centres, judge_centres(centres, boxes, unboxed), strict=True):
        colour = colours[verdict]
        cx, cy = x / scale, y / scale
        draw.ellipse((cx - 6, cy - 6, cx + 6, cy + 6), fill=colour, outline=(255, 255, 255))
    draw.rectangle((0, 0, tile.width, 22), fill=(255, 255, 255))
    draw.text((6, 5), f"{item.image.stem}: {len(item.boxes['rbc'])} boxed, {len(centres)} found",
              fill=(0, 0, 0))
    return tile


def _save_sheet(tiles: list[Image.Image], out: Path, columns: int) -> None:
    width, height = tiles[0].size
    columns = min(columns, len(tiles))
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (width * columns, height * rows), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (width * (i % columns), height * (i // columns)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def unmatched_white_cells(items: list, out: Path, columns: int = 3,  # type: ignore[type-arg]
                          ) -> int:
    """Draw every white-cell detection that matches no annotated box, for a reader to judge.

    Each tile is the whole field at half size: the detection in red, BCCD's own WBC boxes in
    green. Returns how many were drawn.
    """
    tiles = []
    for item in items:
        image = Image.open(item.image).convert("RGB")
        detections, _, scale = detect(image, _red_cell_px(image))
        found, predicted, _, used = _scored(detections, "wbc", scale, item.boxes["wbc"])
        for i, detection in enumerate(found):
            if i in used:
                continue
            tile = image.copy()
            draw = ImageDraw.Draw(tile)
            for box in item.boxes["wbc"]:
                draw.rectangle(box, outline=(0, 170, 0), width=4)
            draw.rectangle(predicted[i], outline=(220, 0, 0), width=4)
            edge = "cut by the edge" if detection.at_border else "inside the field"
            draw.rectangle((0, 0, tile.width, 22), fill=(255, 255, 255))
            draw.text((6, 5), f"{item.image.stem}: {edge}", fill=(0, 0, 0))
            tiles.append(tile.reduce(2))
    if tiles:
        _save_sheet(tiles, out, columns)
    return len(tiles)


def gate_on_degraded(items: list) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Share rejected by the gate on clearly bad versions of the same fields."""
    bad = {
        "blurred_sigma3": lambda im: im.filter(ImageFilter.GaussianBlur(3)),
        "dark_x0.25": lambda im: Image.fromarray((np.asarray(im) * 0.25).astype(np.uint8)),
        "overexposed": lambda im: Image.fromarray(
            (np.asarray(im, dtype=np.float32) * 1.8).clip(0, 255).astype(np.uint8)),
    }
    out = {}
    for name, fn in bad.items():
        rejected = 0
        for item in items:
            image = fn(Image.open(item.image).convert("RGB"))
            work, _ = working_image(image, _red_cell_px(image))
            rgb = np.asarray(work, dtype=np.float32)
            rejected += not measure(field_masks(rgb, DetectorParams())).passed
        out[name] = rejected / len(items)
    return out


def speed(items: list, red_cells: RedCellFinder | None = None,  # type: ignore[type-arg]
          repeats: int = 5) -> dict[str, float]:
    classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    image, _ = CONDITIONS["all_combined_12mp"](Image.open(items[0].image).convert("RGB"),
                                               items[0].boxes)
    analyse(image, classifier, red_cells=red_cells)  # warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        analyse(image, classifier, red_cells=red_cells)
        times.append(time.perf_counter() - started)
    return {"12mp_median_s": statistics.median(times), "12mp_max_s": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bccd", type=Path,
                        default=BCCD)
    parser.add_argument("--split", default="test")
    parser.add_argument("--conditions", nargs="*", default=list(CONDITIONS))
    parser.add_argument("--unmatched-png", type=Path,
                        help="draw the white-cell detections that match no BCCD box here")
    parser.add_argument("--red-cells", default=str(DEFAULT_RED_CELL_MODEL_PATH),
                        help="red-cell centre model (a path without suffix), or 'colour' for "
                             "the colour rule's distance peaks")
    parser.add_argument("--red-cells-png", type=Path,
                        help="draw the red-cell detections of the first four fields here")
    args = parser.parse_args()
    red_cells = load_red_cell_finder(None if args.red_cells == "colour" else Path(args.red_cells))
    print(f"red cells: {args.red_cells}")
    items = read_split(args.bccd, args.split)
    print(f"BCCD {args.split}: {len(items)} fields\n")
    print("| condition | WBC recall | WBC precision | WBC precision (border excl.) | "
          "platelet recall | platelet precision | RBC recall | RBC mean rel. error | RBC mean abs "
          "rel. error | gate accepts |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.conditions:
        r = run_condition(items, CONDITIONS[name], red_cells)
        print(f"| {name} | {r['wbc_recall']:.3f} | {r['wbc_precision']:.3f} | "
              f"{r['wbc_precision_excl_border']:.3f} | {r['platelet_recall']:.3f} | "
              f"{r['platelet_precision']:.3f} | {r['rbc_recall']:.3f} | "
              f"{r['rbc_mean_rel_error']:+.3f} | "
              f"{r['rbc_mean_abs_rel_error']:.3f} | {r['quality_gate_accepts']:.3f} |", flush=True)
    print("\nred-cell count by annotation completeness (clean fields; coverage = share of "
          "red-cell pixels inside an annotated RBC box, split at 0.5):")
    for name, (fields, signed, absolute) in rbc_by_annotation_completeness(
            items, red_cells=red_cells).items():
        print(f"  {name}: {fields} fields, mean signed error {signed:+.3f}, "
              f"mean abs error {absolute:.3f}")
    gaps = red_cells_against_gaps(items, red_cells, args.red_cells_png)
    print(f"\nred-cell detection (clean fields): recall of the boxed cells {gaps['recall']:.3f}, "
          f"precision where the annotation can tell {gaps['precision_known']:.3f}, "
          f"{gaps['unknown_share']:.1%} of detections on unboxed red-cell stain")
    print(f"red-cell count inside BCCD's boxes against the number of boxes, per field: "
          f"mean signed error {gaps['in_boxes_signed']:+.3f}, "
          f"mean abs error {gaps['in_boxes_abs']:.3f}")
    if args.unmatched_png:
        drawn = unmatched_white_cells(items, args.unmatched_png)
        print(f"\n{drawn} unmatched white-cell detections drawn in {args.unmatched_png}")
    print("\nquality gate rejects on degraded fields:")
    for name, share in gate_on_degraded(items).items():
        print(f"  {name}: {share:.3f}")
    print("\nspeed, one 12 MP phone-like photo, whole analysis:")
    for name, value in speed(items, red_cells).items():
        print(f"  {name}: {value:.3f}")


if __name__ == "__main__":
    main()
