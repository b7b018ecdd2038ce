"""Whole-field analysis on real BCCD fields, and refusals of photos that are not smears."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH, DEFAULT_RED_CELL_MODEL_PATH
from lab.bccd import iou, read_boxes
from tests.conftest import FIXTURES, pbc_fixtures, shifted_into_black, tight_crop
from vision.field.analyse import (
    analyse,
    analyse_many,
    checked_by_white_cells,
    framed_cell,
    framed_like_pbc,
    in_view,
)
from vision.field.annotate import annotate
from vision.field.detect import WORK_RED_CELL_PX, Detection, DetectorParams, working_masks
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.quality import QualityThresholds
from vision.field.scale import RED_CELL_UM, TYPICAL_WHITE_CELL_UM, Scale, image_scale
from vision.model.classifier import CellClassifier

BCCD = FIXTURES / "bccd"


@pytest.fixture(scope="module")
def classifier() -> CellClassifier:
    return CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")


@pytest.mark.parametrize("name", ["BloodImage_00007", "BloodImage_00015"])
def test_the_white_cell_of_a_real_field_is_found_where_annotated(
    classifier: CellClassifier, name: str
) -> None:
    truth = read_boxes(BCCD / f"{name}.xml")
    analysis = analyse(Image.open(BCCD / f"{name}.jpg"), classifier)
    # BCCD's 640 px crops are 1.4-1.8 PBC frames across around one white cell: by what they
    # show, some are close-ups. Either way the white cell is found and its red cells counted.
    assert not analysis.rejected
    white = analysis.classified
    assert len(white) == len(truth["wbc"]) == 1
    assert iou(white[0].box, truth["wbc"][0]) >= 0.5
    assert white[0].label is not None and 0 < (white[0].confidence or 0) <= 1
    assert analysis.rbc_count > 5
    assert analysis.red_cell_model == "colour-rule"  # no network passed in


def test_a_single_cell_close_up_is_classified_directly(classifier: CellClassifier) -> None:
    analysis = analyse(Image.open(pbc_fixtures()["eosinophil"]), classifier)
    assert analysis.mode == "cell"
    assert analysis.scale is not None and analysis.scale.measured
    [cell] = analysis.classified
    assert cell.label == "eosinophil"
    assert analysis.differential[0].label == "eosinophil"


def test_a_screened_models_result_names_the_screen_beside_the_model() -> None:
    screened = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", screen=ABNORMAL_MODEL_PATH)
    analysis = analyse(Image.open(pbc_fixtures()["eosinophil"]), screened)
    assert screened.screen is not None
    assert (analysis.model, analysis.screen_model) == (screened.version, screened.screen.version)
    assert analysis.to_dict()["screen_model"] == screened.screen.version


@pytest.mark.parametrize("label", ["eosinophil", "lymphocyte", "monocyte", "neutrophil"])
def test_a_close_up_shifted_inside_black_bands_keeps_its_label(classifier: CellClassifier,
                                                               label: str) -> None:
    # Other laboratories' crops often come shifted inside their frame, the bared edges black.
    image = Image.open(pbc_fixtures()[label]).convert("RGB")
    analysis = analyse(shifted_into_black(image, 40, -30), classifier)
    assert analysis.mode == "cell"
    [cell] = analysis.classified
    assert cell.label == label


def test_what_lies_outside_the_field_of_view_reaches_the_classifier_as_background() -> None:
    shifted = shifted_into_black(Image.open(pbc_fixtures()["monocyte"]).convert("RGB"), 60, 0)
    masks, factor = working_masks(shifted, image_scale(shifted).red_cell_px, DetectorParams())
    seen = np.asarray(in_view(shifted, (0, 0), masks, factor), dtype=np.float32)
    assert seen[:, :60].min() > 150  # the black band, now the field's pale background
    assert np.array_equal(seen[:, 80:], np.asarray(shifted, dtype=np.float32)[:, 80:])


def test_a_close_up_framed_as_pbc_frames_cells_is_classified_as_the_photographer_framed_it(
    classifier: CellClassifier,
) -> None:
    image = Image.open(pbc_fixtures()["lymphocyte"]).convert("RGB")
    [cell] = analyse(image, classifier).classified
    [whole] = classifier.classify_image(image)
    assert cell.confidence == pytest.approx(whole.confidence, abs=1e-5)
    assert [s.label for s in cell.top3] == [s.label for s in whole.top3]


def test_only_a_centred_cell_at_pbcs_framing_keeps_the_photographers_framing() -> None:
    assert framed_like_pbc((256, 256), (130.0, 125.0), side=250)
    assert not framed_like_pbc((256, 256), (180.0, 128.0), side=250)  # off-centre
    assert not framed_like_pbc((600, 600), (300.0, 300.0), side=250)  # wider than PBC's
    assert not framed_like_pbc((120, 120), (60.0, 60.0), side=250)  # tighter
    # A crop's own scale reading is more than 15% off for one PBC crop in ten: within a
    # quarter of PBC's framing the photographer's framing is trusted over it.
    assert framed_like_pbc((256, 256), (128.0, 128.0), side=200)
    assert not framed_like_pbc((256, 256), (128.0, 128.0), side=180)


def test_a_cell_framed_as_pbc_frames_cells_is_learnt_as_the_photographer_framed_it() -> None:
    image = Image.open(pbc_fixtures()["lymphocyte"]).convert("RGB")
    assert np.array_equal(np.asarray(framed_cell(image)), np.asarray(image))


def test_a_tight_crop_is_learnt_at_pbcs_framing_padded_with_its_background() -> None:
    # Another laboratory's tight crop of the same cell: the path shows the classifier the cell
    # at PBC's framing, so an adaptation must learn it so.
    image = Image.open(pbc_fixtures()["neutrophil"]).convert("RGB")
    tight = tight_crop(image)
    framed = framed_cell(tight)
    assert framed.width == framed.height
    # The white cell is the ruler of a tight crop: a neutrophil, larger than the typical white
    # cell, reads the scale some 20% small.
    assert tight.width < framed.width <= 1.2 * max(image.size)
    pixels = np.asarray(framed, dtype=np.float32)
    assert pixels[:5, :5].min() > 150 and pixels[-5:, -5:].min() > 150  # background, not black
    middle = framed.width // 2
    assert pixels[middle - 5:middle + 5, middle - 5:middle + 5].mean() < 200  # the cell, centred


@pytest.mark.parametrize("factor", [0.6, 1.0, 3.0])
def test_a_close_up_is_recognised_by_what_it_shows_not_by_its_pixels(
    classifier: CellClassifier, factor: float
) -> None:
    cell = Image.open(pbc_fixtures()["neutrophil"])
    resized = cell.resize((round(cell.width * factor), round(cell.height * factor)),
                          Image.Resampling.BICUBIC)
    analysis = analyse(resized, classifier)
    assert analysis.mode == "cell"
    assert [c.label for c in analysis.classified] == ["neutrophil"]
    base = analyse(cell, classifier).scale
    assert analysis.scale is not None and base is not None
    assert analysis.scale.red_cell_px == pytest.approx(base.red_cell_px * factor, rel=0.1)


def test_a_close_up_without_a_white_cell_names_what_is_centred(
    classifier: CellClassifier,
) -> None:
    analysis = analyse(Image.open(pbc_fixtures()["platelet"]), classifier)
    assert analysis.mode == "cell"
    assert [c.label for c in analysis.classified] == ["platelet"]


@pytest.mark.parametrize("side", [320, 1280, 2560])
def test_a_field_at_any_resolution_finds_its_white_cell(classifier: CellClassifier,
                                                        side: int) -> None:
    field = Image.open(BCCD / "BloodImage_00015.jpg")
    factor = side / field.width
    resized = field.resize((side, round(field.height * factor)), Image.Resampling.BICUBIC)
    [truth] = read_boxes(BCCD / "BloodImage_00015.xml")["wbc"]
    analysis = analyse(resized, classifier)
    white = [c for c in analysis.cells if c.kind in ("wbc", "cell") and c.label]
    expected = tuple(round(v * factor) for v in truth)
    assert any(iou(c.box, expected) >= 0.5 for c in white), analysis.to_dict()


def test_photos_analysed_together_get_what_each_gets_alone(classifier: CellClassifier) -> None:
    # Framed in two threads, one forward pass for all their cells: PBC close-ups, a BCCD field
    # holding one white cell and a refused photo.
    photos = [Image.open(pbc_fixtures()["eosinophil"]), Image.open(BCCD / "BloodImage_00007.jpg"),
              Image.new("RGB", (1200, 900), (0, 0, 0)), Image.open(pbc_fixtures()["monocyte"])]
    together = analyse_many(photos, classifier, threads=2)
    alone = [analyse(photo, classifier) for photo in photos]
    assert [a.mode for a in together] == [a.mode for a in alone]
    assert [a.rejected for a in together] == [False, False, True, False]
    for batched, single in zip(together, alone, strict=True):
        assert [(c.kind, c.box, c.label, c.reasons) for c in batched.cells] \
            == [(c.kind, c.box, c.label, c.reasons) for c in single.cells]
        assert [c.confidence for c in batched.classified] \
            == pytest.approx([c.confidence for c in single.classified], abs=1e-4)
    assert set(together[0].timings) == {"scale", "quality", "detect", "frame", "classify",
                                        "total"}


def test_a_close_ups_red_cells_are_counted_by_the_colour_rule_a_fields_by_the_network(
        classifier: CellClassifier) -> None:
    # A close-up's red cells are the slivers its edges cut, never shown: the network would
    # cost about as much as the cell's classification.
    network = load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH)
    close_up = analyse(Image.open(pbc_fixtures()["neutrophil"]), classifier, red_cells=network)
    assert close_up.mode == "cell" and close_up.red_cell_model == "colour-rule"
    field = analyse(Image.open(BCCD / "BloodImage_00015.jpg"), classifier, red_cells=network)
    assert field.mode == "field" and field.red_cell_model == "rbc-centres-v3"


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (Image.new("RGB", (1200, 900), (235, 235, 232)), "not_a_smear"),
        (Image.new("RGB", (1200, 900), (0, 0, 0)), "no_field"),
        (Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 1200, 3),
                                                           dtype=np.uint8)), "not_a_smear"),
    ],
    ids=["blank", "black", "noise"],
)
def test_a_photo_that_is_not_a_smear_is_refused_with_a_reason(
    classifier: CellClassifier, image: Image.Image, problem: str
) -> None:
    analysis = analyse(image, classifier)
    assert analysis.rejected
    assert analysis.quality is not None and analysis.quality.problem == problem
    assert analysis.quality.message and not analysis.cells


def test_a_blurred_field_is_refused_with_a_focusing_tip(classifier: CellClassifier) -> None:
    # A blur of 3 px at the working scale: BCCD's red cells are twice the working size.
    blurred = Image.open(BCCD / "BloodImage_00007.jpg").filter(ImageFilter.GaussianBlur(6))
    analysis = analyse(blurred, classifier)
    assert analysis.quality is not None and analysis.quality.problem == "blurred"
    assert "focus" in (analysis.quality.message or "")


def test_a_blurred_field_taken_for_a_close_up_is_still_refused(
        classifier: CellClassifier) -> None:
    # Blur swells the white cell's pale rim and merges the red cells: the white cell becomes
    # the ruler, the field is shrunk to its typical size and looks sharp there. Judged at the
    # red cells' own reading, it is blurred.
    blurred = Image.open(BCCD / "BloodImage_00015.jpg").filter(ImageFilter.GaussianBlur(6))
    analysis = analyse(blurred, classifier)
    assert analysis.scale is not None and analysis.scale.ruler == "white cells"
    assert analysis.scale.red_cells_px is not None
    assert analysis.scale.red_cell_px > 2 * analysis.scale.red_cells_px
    assert analysis.quality is not None and analysis.quality.problem == "blurred"
    assert analysis.quality.focus < QualityThresholds().min_focus_at_red_cells


@pytest.mark.parametrize("picture", ["astronaut", "immunohistochemistry"])
def test_a_brown_or_skin_coloured_picture_is_not_a_smear(classifier: CellClassifier,
                                                         picture: str) -> None:
    # Both pass the background and stain-share tests (a person's photo has pale sky and
    # violet-ish shadows; a DAB slide has hematoxylin nuclei): their browns give them away.
    data = pytest.importorskip("skimage.data")
    photo = Image.fromarray(getattr(data, picture)())
    analysis = analyse(photo, classifier)
    assert analysis.quality is not None and analysis.quality.problem == "not_a_smear"
    assert analysis.quality.brown > QualityThresholds().max_brown


def test_a_photo_without_a_blood_cell_in_it_is_not_a_smear(classifier: CellClassifier) -> None:
    # A fundus photograph passes the gate (a pale disc of red-violet vessels on a dark surround);
    # the shipped red-cell network, white-cell and platelet detection find nothing in it, and
    # the rejection step says its centre is no blood cell either.
    data = pytest.importorskip("skimage.data")
    analysis = analyse(Image.fromarray(data.retina()), classifier,
                       red_cells=load_red_cell_finder(DEFAULT_RED_CELL_MODEL_PATH))
    assert analysis.quality is not None and analysis.quality.problem == "not_a_smear"
    assert analysis.quality.message and not analysis.cells


def test_the_json_has_the_documented_fields(classifier: CellClassifier) -> None:
    data = analyse(Image.open(BCCD / "BloodImage_00015.jpg"), classifier).to_dict()
    assert {"mode", "width", "height", "model", "red_cell_model", "quality", "cells",
            "differential",
            "wbc_count", "rbc_count", "platelet_count", "timings_ms"} <= set(data)
    assert {"kind", "box", "label", "confidence", "top3", "review", "at_border"} <= set(
        data["cells"][0])  # type: ignore[index]
    json.dumps(data)


def test_the_annotated_picture_is_a_png_that_opens(classifier: CellClassifier,
                                                   tmp_path: Path) -> None:
    field = Image.open(BCCD / "BloodImage_00007.jpg")
    path = tmp_path / "annotated.png"
    annotate(field, analyse(field, classifier)).save(path)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.width > field.width  # the legend and chart panel sit beside the photo


def _white(side_um: float, at_border: bool = False) -> Detection:
    side = side_um * WORK_RED_CELL_PX / RED_CELL_UM  # working pixels
    return Detection("wbc", (100, 100, round(100 + side), round(100 + side)), at_border, 1.0)


def test_white_cells_of_a_plausible_size_leave_the_red_cells_reading_alone() -> None:
    scale = Scale(56.0, measured=True)
    assert checked_by_white_cells(scale, [_white(8), _white(14), _white(22)]) is None
    assert checked_by_white_cells(scale, []) is None


def test_white_cells_measuring_impossibly_large_or_small_become_the_ruler() -> None:
    # The red cells were misread 2.6 times too small: the white cell comes out at 35 µm.
    scale = Scale(21.6, measured=True)
    better = checked_by_white_cells(scale, [_white(35)])
    assert better is not None and better.ruler == "white cells"
    assert better.red_cell_px == pytest.approx(21.6 * 35 / TYPICAL_WHITE_CELL_UM, rel=0.02)
    smaller = checked_by_white_cells(Scale(166.0, measured=True), [_white(4)])
    assert smaller is not None and smaller.red_cell_px < 166.0 / 2


def test_a_white_cell_cut_by_the_border_is_no_ruler() -> None:
    assert checked_by_white_cells(Scale(21.6, measured=True), [_white(35, at_border=True)]) \
        is None
