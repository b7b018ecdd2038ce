"""Every image through the one analysis path, on data from several laboratories.

    python -m benchmarks.cross_lab [--sets bionet-val bionet-test bccd-val bccd-test pbc-train
        pbc-val pbc-test lisc bionet-val-crops bionet-test-crops] [--limit N] [--sizes] [--refusals]
        [--phone] [--shifted] [--json OUT] [--model FILE] [--red-cells FILE]

Fields (Bio-Net, BCCD): gate acceptance, white-cell recall and precision at IoU >= 0.5, the
red-cell count's mean absolute error against the boxes, the measured red-cell size and the time
per image; with ``--sizes`` also each field resized to 50%, 200% and to 256 px on its long side;
with ``--phone`` also through an eyepiece and as a phone photo (``benchmarks.phone_conditions``);
with ``--refusals`` the gate's refusals of each field blurred, darkened and over-exposed, of
non-smear images (and of other pictures kept out of choosing the thresholds), and the time for
a 12 MP photo.
Cell crops (PBC, LISC): gate acceptance, accuracy of the cell the crop is centred on (and of the
classifier alone on the whole crop, with the crops it names right that the path loses), the
share given a label, the accuracy of those, and the wrong share among cells given >= 90% confidence;
with ``--shifted`` also each crop shifted inside its frame, the bared edges black, as other
laboratories' crops come (LISC's copies are).
LISC is an unseen laboratory: report it, never choose on it.
Bio-Net's white cells cut out of their fields as other laboratories crop them
(``bionet-val-crops``, ``bionet-test-crops``): tight (the box and 15%), at PBC's framing, and
wide (1.8 frames), each kept inside the field: gate acceptance, the white cell found (a
classified cell overlapping its box), labelled, and named right where Bio-Net gives its subtype.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from benchmarks.paths import BCCD, BIONET, LISC, PBC
from benchmarks.phone_conditions import Boxes, Condition, phone_visible, vignette_visible
from benchmarks.served import add_model_arguments, served_classifier
from core.settings import DEFAULT_RED_CELL_MODEL_PATH
from lab import bccd, bionet
from lab.bccd import Annotated, match
from vision.data import index_image_folder
from vision.field.analyse import PBC_FRAME_UM, analyse
from vision.field.detect import WORK_RED_CELL_PX
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.results import Analysis, Cell
from vision.field.scale import image_scale
from vision.labels import NOT_RECOGNISED, PBC_CLASSES

Box = tuple[int, int, int, int]
Resize = Callable[[Image.Image], float]


def resized_by(resize: Resize) -> Condition:
    """A condition resizing a field (and its boxes) by the factor ``resize`` gives it."""
    def apply(image: Image.Image, boxes: Boxes) -> tuple[Image.Image, Boxes]:
        factor = resize(image)
        return _resized(image, factor), {
            kind: [(round(x0 * factor), round(y0 * factor), round(x1 * factor),
                    round(y1 * factor)) for x0, y0, x1, y1 in items]
            for kind, items in boxes.items()}
    return apply


SIZES: dict[str, Condition] = {
    "own size": resized_by(lambda image: 1.0),
    "50%": resized_by(lambda image: 0.5),
    "200%": resized_by(lambda image: 2.0),
    "256 px": resized_by(lambda image: 256 / max(image.size)),
}
# A phone photo through the eyepiece (``benchmarks.phone_conditions``), scored against the part
# of each cell the eyepiece leaves visible.
PHONE: dict[str, Condition] = {
    "eyepiece": vignette_visible,
    "phone, all at once, 12 MP": phone_visible,
}


NAN = float("nan")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else NAN


@dataclass
class FieldScore:
    images: int = 0
    accepted: int = 0
    true: int = 0
    false: int = 0
    missed: int = 0
    count_errors: list[float] = field(default_factory=list)
    red_cell_px: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        return {
            "images": self.images,
            "gate_accepts": self.accepted / max(self.images, 1),
            "wbc_recall": self.true / max(self.true + self.missed, 1),
            "wbc_precision": self.true / max(self.true + self.false, 1),
            "rbc_count_abs_error": statistics.fmean(self.count_errors)
            if self.count_errors else NAN,
            "red_cell_px_median": _median(self.red_cell_px),
            "seconds_per_image": _median(self.seconds),
        }


@dataclass
class CellScore:
    images: int = 0
    accepted: int = 0
    right: int = 0
    labelled: int = 0
    labelled_right: int = 0
    flagged: int = 0  # labelled, but flagged for review
    confident: int = 0
    confident_wrong: int = 0
    # The classifier alone on the whole image, as ``hematovision evaluate`` sees it, and the
    # images it names right that the path does not: the path's own losses.
    alone_right: int = 0
    lost_by_path: int = 0
    red_cell_px: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        return {
            "images": self.images,
            "gate_accepts": self.accepted / max(self.images, 1),
            "accuracy": self.right / max(self.images, 1),
            "accuracy_classifier_alone": self.alone_right / max(self.images, 1),
            "lost_by_path": self.lost_by_path,
            "labelled_share": self.labelled / max(self.images, 1),
            "accuracy_of_labelled": self.labelled_right / max(self.labelled, 1),
            "flagged_share": self.flagged / max(self.images, 1),
            "wrong_share_at_90_unflagged": self.confident_wrong / max(self.confident, 1),
            "red_cell_px_median": _median(self.red_cell_px),
            "seconds_per_image": _median(self.seconds),
        }


def _resized(image: Image.Image, factor: float) -> Image.Image:
    if factor == 1.0:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _timed(image: Image.Image, run: Callable[[Image.Image], Analysis]) -> tuple[Analysis, float]:
    started = time.perf_counter()
    analysis = run(image)
    return analysis, time.perf_counter() - started


def score_fields(items: list[Annotated], run: Callable[[Image.Image], Analysis],
                 condition: Condition) -> FieldScore:
    score = FieldScore()
    for item in items:
        original = Image.open(item.image).convert("RGB")
        image, boxes = condition(original, item.boxes)
        factor = image.width / original.width
        truth = boxes["wbc"]
        analysis, seconds = _timed(image, run)
        score.images += 1
        score.seconds.append(seconds)
        if analysis.scale is not None:
            score.red_cell_px.append(analysis.scale.red_cell_px / factor)
        if analysis.rejected:
            score.missed += len(truth)
            continue
        score.accepted += 1
        found = [c.box for c in analysis.cells if c.kind in ("wbc", "cell") and c.label]
        true, _ = match(list(found), list(truth))
        score.true += true
        score.false += len(found) - true
        score.missed += len(truth) - true
        if boxes["rbc"]:
            score.count_errors.append(abs(analysis.rbc_count - len(boxes["rbc"]))
                                      / len(boxes["rbc"]))
    return score


def centred_cell(analysis: Analysis) -> Cell | None:
    """The classified cell nearest the image's centre (the cell a crop shows)."""
    cells = analysis.classified
    if not cells:
        return None
    cx, cy = analysis.width / 2, analysis.height / 2
    return min(cells, key=lambda c: abs((c.box[0] + c.box[2]) / 2 - cx)
               + abs((c.box[1] + c.box[3]) / 2 - cy))


def _centred_label(analysis: Analysis) -> tuple[str | None, float, bool]:
    """The label, confidence and review flag of the cell a crop shows."""
    cell = centred_cell(analysis)
    if cell is None:
        return None, 0.0, False
    return cell.label, cell.confidence or 0.0, cell.review


# Other laboratories' cell crops often come shifted inside their frame, the bared edges black
# (LISC's copies do): up to this share of the side, each way.
SHIFT_SHARE = 0.25


def shifted_into_black(image: Image.Image, seed: int) -> Image.Image:
    """``image`` moved inside its own frame by a random offset (fixed by ``seed``), the bared
    edges black."""
    rng = np.random.default_rng(seed)
    dx, dy = (round(share * side) for share, side in
              zip(rng.uniform(-SHIFT_SHARE, SHIFT_SHARE, 2), image.size, strict=True))
    out = Image.new("RGB", image.size, (0, 0, 0))
    out.paste(image, (dx, dy))
    return out


def score_cells(root: Path, run: Callable[[Image.Image], Analysis],
                alone: Callable[[Image.Image], str], limit: int | None,
                shifted: bool = False) -> CellScore:
    score = CellScore()
    samples = index_image_folder(root, PBC_CLASSES)
    if limit:
        samples = samples[::max(1, len(samples) // limit)][:limit]
    for index, sample in enumerate(samples):
        truth = PBC_CLASSES[sample.label]
        image = Image.open(sample.path).convert("RGB")
        if shifted:
            image = shifted_into_black(image, index)
        analysis, seconds = _timed(image, run)
        score.images += 1
        score.seconds.append(seconds)
        alone_right = alone(image) == truth
        score.alone_right += alone_right
        if analysis.scale is not None:
            score.red_cell_px.append(analysis.scale.red_cell_px)
        if analysis.rejected:
            score.lost_by_path += alone_right
            continue
        score.accepted += 1
        label, confidence, review = _centred_label(analysis)
        score.right += label == truth
        score.lost_by_path += alone_right and label != truth
        if label is not None and label != NOT_RECOGNISED:
            score.labelled += 1
            score.labelled_right += label == truth
            score.flagged += review
            # What a user would take at face value: confident, and not flagged for review.
            if confidence >= 0.9 and not review:
                score.confident += 1
                score.confident_wrong += label != truth
    return score


FRAMINGS: dict[str, Callable[[Box, float], float]] = {
    "tight": lambda box, px_per_um: 1.15 * max(box[2] - box[0], box[3] - box[1]),
    "PBC framing": lambda box, px_per_um: PBC_FRAME_UM * px_per_um,
    "wide": lambda box, px_per_um: 1.8 * PBC_FRAME_UM * px_per_um,
}


@dataclass
class CropScore:
    images: int = 0
    accepted: int = 0
    found: int = 0
    labelled: int = 0
    with_subtype: int = 0
    subtype_right: int = 0

    def row(self) -> dict[str, float]:
        return {"images": self.images, "gate_accepts": self.accepted / max(self.images, 1),
                "white_cell_found": self.found / max(self.images, 1),
                "labelled_share": self.labelled / max(self.images, 1),
                "subtype_cells": self.with_subtype,
                "subtype_accuracy": self.subtype_right / max(self.with_subtype, 1)}


def _subtypes(split: str) -> dict[tuple[str, Box], str]:
    with (BIONET / "annotations.csv").open(newline="") as handle:
        return {(row["image"], (int(row["xmin"]), int(row["ymin"]), int(row["xmax"]),
                                int(row["ymax"]))): row["wbc_subtype"]
                for row in csv.DictReader(handle)
                if row["split"] == split and row["label"] == "WBC" and row["wbc_subtype"]}


def crop_around(image: Image.Image, box: Box, side: float) -> tuple[Image.Image, Box]:
    """A square of ``side`` (at most the image's shorter side) centred on ``box`` but kept
    inside ``image``, and the box in the crop's pixels."""
    side = min(side, image.width, image.height)
    left = min(max(0.0, (box[0] + box[2] - side) / 2), image.width - side)
    top = min(max(0.0, (box[1] + box[3] - side) / 2), image.height - side)
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    x, y = round(left), round(top)
    return crop, (box[0] - x, box[1] - y, box[2] - x, box[3] - y)


def score_crops(items: list[Annotated], split: str, run: Callable[[Image.Image], Analysis],
                ) -> dict[str, CropScore]:
    subtypes = _subtypes(split)
    scores = {name: CropScore() for name in FRAMINGS}
    for item in items:
        field_image = Image.open(item.image).convert("RGB")
        px_per_um = image_scale(field_image).px_per_um
        for box in item.boxes["wbc"]:
            for name, framing in FRAMINGS.items():
                crop, inside = crop_around(field_image, box, framing(box, px_per_um))
                _score_crop(scores[name], run(crop), inside,
                            subtypes.get((item.image.name, box)))
    return scores


def _score_crop(score: CropScore, analysis: Analysis, box: Box, subtype: str | None) -> None:
    score.images += 1
    score.with_subtype += subtype is not None
    if analysis.rejected:
        return
    score.accepted += 1
    whole = (0, 0, analysis.width, analysis.height)
    found = [c for c in analysis.classified if c.box != whole and match([c.box], [box], 0.3)[0]]
    if not found:
        return
    score.found += 1
    label = found[0].label
    score.labelled += label not in (None, NOT_RECOGNISED)
    score.subtype_right += subtype is not None and label == subtype


def _degradations(image: Image.Image) -> dict[str, Image.Image]:
    """The photo blurred by 3 px at the working scale, darkened to a quarter, over-exposed."""
    sigma = 3 * image_scale(image).red_cell_px / WORK_RED_CELL_PX
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return {"blurred": image.filter(ImageFilter.GaussianBlur(sigma)),
            "dark": Image.fromarray((rgb * 0.25).astype(np.uint8)),
            "over-exposed": Image.fromarray((rgb * 1.8).clip(0, 255).astype(np.uint8))}


def non_smears() -> list[Image.Image]:
    """Photographs, grey pictures, a screenshot-like page, noise, a blank slide, a black frame."""
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina",
             "camera", "page", "text", "horse", "cat", "colorwheel", "logo", "brick", "grass",
             "gravel", "hubble_deep_field", "moon", "clock", "coins")
    pictures = []
    for name in names:
        array = getattr(data, name)()
        array = (array * 255).astype(np.uint8) if array.dtype == bool else array.astype(np.uint8)
        pictures.append(Image.fromarray(array).convert("RGB"))
    noise = np.random.default_rng(0).integers(0, 255, (900, 1200, 3), dtype=np.uint8)
    return [*pictures, Image.fromarray(noise), Image.new("RGB", (1200, 900), (235, 235, 232)),
            Image.new("RGB", (1200, 900), (0, 0, 0))]


def other_pictures() -> list[Image.Image]:
    """Non-smear pictures kept out of choosing the gate's thresholds: matplotlib's sample
    photograph and graphics, scikit-image's stereo pair and grey pictures."""
    import matplotlib
    from skimage import data

    samples = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    pictures = [Image.open(samples / name).convert("RGB") for name in
                ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")]
    left, right, _ = data.stereo_motorcycle()
    grey = [data.cell(), data.microaneurysms(), data.checkerboard(),
            (data.binary_blobs() * 255).astype(np.uint8),
            (data.shepp_logan_phantom() * 255).astype(np.uint8)]
    return [*pictures, *(Image.fromarray(a).convert("RGB") for a in (left, right, *grey))]


def refusals(items: list[Annotated], run: Callable[[Image.Image], Analysis]) -> dict[str, float]:
    """Share of each degraded version refused by the gate, and of the non-smear images."""
    refused: dict[str, list[bool]] = {}
    for item in items:
        for name, image in _degradations(Image.open(item.image).convert("RGB")).items():
            refused.setdefault(name, []).append(run(image).rejected)
    refused["not a smear"] = [run(image).rejected for image in non_smears()]
    refused["other pictures"] = [run(image).rejected for image in other_pictures()]
    return {name: sum(flags) / len(flags) for name, flags in refused.items()}


def twelve_megapixel_seconds(item: Annotated, run: Callable[[Image.Image], Analysis],
                             repeats: int = 5) -> float:
    """Median time to analyse a field enlarged to 4000 x 3000, as a phone photo is."""
    image = Image.open(item.image).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    return statistics.median(_timed(image, run)[1] for _ in range(repeats))


FIELD_SOURCES: dict[str, tuple[Callable[[Path, str], list[Annotated]], Path]] = {
    "bionet": (bionet.read_split, BIONET), "bccd": (bccd.read_split, BCCD)}


def field_sets(names: list[str], limit: int | None) -> Iterator[tuple[str, list[Annotated]]]:
    """The field sets among ``names`` (``bionet-val``, ``bccd-train``, ...), each read."""
    for name in names:
        source, _, split = name.partition("-")
        if source in FIELD_SOURCES and split in ("train", "val", "test"):
            read, root = FIELD_SOURCES[source]
            items = read(root, split)
            yield name, items[:limit] if limit else items


def emit(rows: list[dict[str, object]], row: dict[str, object]) -> None:
    """Print ``row`` as one JSON line (a long run's progress) and keep it for ``--json``."""
    rows.append(row)
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["bionet-val", "bionet-test", "bccd-test",
                                                       "pbc-test", "lisc"])
    parser.add_argument("--limit", type=int, help="at most this many images per set")
    parser.add_argument("--sizes", action="store_true",
                        help="also score each field set at 50%%, 200%% and 256 px")
    parser.add_argument("--refusals", action="store_true",
                        help="also the gate's refusals of degraded fields and non-smear images, "
                             "and a 12 MP photo's time")
    parser.add_argument("--phone", action="store_true",
                        help="also score each field set through an eyepiece (vignette) and as a "
                             "phone photo (colour cast, tilt, vignette, JPEG, 12 MP)")
    parser.add_argument("--shifted", action="store_true",
                        help="also score each cell-crop set shifted inside its frame by up to a "
                             "quarter of its side, the bared edges black")
    parser.add_argument("--json", type=Path, help="write every row here too")
    add_model_arguments(parser)
    parser.add_argument("--red-cells", type=Path, default=DEFAULT_RED_CELL_MODEL_PATH,
                        help="red-cell centre network (default: the shipped one)")
    args = parser.parse_args()
    classifier = served_classifier(args)
    red_cells = load_red_cell_finder(args.red_cells)

    def run(image: Image.Image) -> Analysis:
        return analyse(image, classifier, red_cells=red_cells)

    rows: list[dict[str, object]] = []
    for name, items in field_sets(args.sets, args.limit):
        conditions = {"own size": SIZES["own size"], **(SIZES if args.sizes else {}),
                      **(PHONE if args.phone else {})}
        for size, condition in conditions.items():
            row = {"set": name, "size": size, **score_fields(items, run, condition).row()}
            emit(rows, row)
        if args.refusals:
            row = {"set": name, "refused": refusals(items, run),
                   "seconds_12mp": twelve_megapixel_seconds(items[0], run)}
            emit(rows, row)
    for name in args.sets:
        if name in ("bionet-val-crops", "bionet-test-crops"):
            split = name.removeprefix("bionet-").removesuffix("-crops")
            items = [i for i in bionet.read_split(BIONET, split) if i.boxes["wbc"]]
            for framing, score in score_crops(items[:args.limit] if args.limit else items,
                                              split, run).items():
                row = {"set": name, "framing": framing, **score.row()}
                emit(rows, row)
    def alone(image: Image.Image) -> str:
        return classifier.classify_crops([image], reject_outliers=False)[0].label

    # PBC train: cells the model has learnt, so what the path loses there is the path's doing
    # (a sample, with ``--limit``), without reading the test split.
    crops = {"pbc-train": PBC / "train", "pbc-val": PBC / "val", "pbc-test": PBC / "test",
             "lisc": LISC}
    for name in args.sets:
        if name not in crops:
            continue
        for shifted in (False, True) if args.shifted else (False,):
            row = {"set": name, "size": "shifted into black" if shifted else "own size",
                   **score_cells(crops[name], run, alone, args.limit, shifted).row()}
            emit(rows, row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
