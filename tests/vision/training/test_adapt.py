"""Adapting the head to one laboratory: its labelled cells named right, other classes kept."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from PIL import Image

from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import pbc_fixtures
from vision.model.artifact import load_artifact
from vision.model.classifier import CellClassifier
from vision.model.rejection import OodDetector
from vision.training.adapt import (
    SOURCE_CONFIG,
    AdaptConfig,
    BaseGaussians,
    DistilledCells,
    adapt_head,
    adapt_model,
    capped_threshold,
    dihedral_views,
    fit_head,
    laboratory_prior,
    with_laboratory_cells,
)


def stained_elsewhere(image: Image.Image) -> Image.Image:
    """The cell as a laboratory with a bluer stain and a green-cast camera would show it."""
    red, green, blue = image.convert("RGB").split()
    return Image.merge("RGB", (blue, green.point(lambda v: min(255, v + 25)), red))


def test_the_eight_views_are_the_symmetries_of_the_square() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = dihedral_views(x, 8)
    assert torch.equal(views[0], x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert all(v.shape == x.shape for v in views)
    assert len(dihedral_views(x, 2)) == 2


def test_replayed_embeddings_follow_the_class_means() -> None:
    means = torch.tensor([[0.0, 0.0], [10.0, -5.0]])
    detector = OodDetector(means, torch.eye(2) * 4.0, threshold=9.0)  # variance 1/4
    samples, labels = BaseGaussians.of(detector).sample(4000, torch.Generator().manual_seed(0))
    assert samples.shape == (8000, 2) and labels.tolist().count(1) == 4000
    for c in (0, 1):
        assert torch.allclose(samples[labels == c].mean(0), means[c], atol=0.05)
        assert torch.allclose(samples[labels == c].var(0), torch.full((2,), 0.25), atol=0.03)


def test_classes_a_laboratory_never_labelled_become_rarer_there_never_impossible() -> None:
    prior = laboratory_prior(torch.tensor([0, 0, 1]), classes=4)
    # Counted with one pseudo-cell a class: 3, 2, 1 and 1 of 7, against a quarter each.
    assert torch.allclose(prior.exp(), torch.tensor([3, 2, 1, 1]) / 7 * 4)
    assert prior[0] > prior[1] > 0 > prior[2] == prior[3] > -math.inf


def test_a_laboratorys_own_spread_is_no_longer_taken_for_strangeness() -> None:
    # The base cells hardly vary along x; the laboratory's, by their stain and camera, do.
    detector = OodDetector(torch.zeros(1, 2), torch.diag(torch.tensor([100.0, 1.0])), 9.0)
    spread = torch.tensor([[-1.0, 5.0], [1.0, 5.0], [-0.5, 5.0], [0.5, 5.0]])
    labels = torch.zeros(4, dtype=torch.long)
    new_cell = torch.tensor([[0.8, 5.0]])
    narrow = with_laboratory_cells(detector, spread, labels, widen=False)
    wide = with_laboratory_cells(detector, spread, labels)
    assert torch.equal(narrow.means, wide.means) and narrow.means.shape == (2, 2)
    assert float(narrow.scores(new_cell)) > 60 > 2 > float(wide.scores(new_cell))
    # Along y, where the laboratory's cells do not spread, nothing is widened.
    off = torch.tensor([[0.0, 8.0]])
    assert float(wide.scores(off)) == pytest.approx(float(narrow.scores(off)), rel=0.01)


def test_a_laboratorys_threshold_stays_below_every_image_of_no_cell() -> None:
    detector = OodDetector(torch.zeros(1, 1), torch.eye(1), threshold=9.0)
    non_cells = torch.tensor([[4.0], [-5.0]])  # scores 16 and 25
    assert capped_threshold(detector, 12.0, 9.0, non_cells) == 12.0
    capped = capped_threshold(detector, 30.0, 9.0, non_cells)
    assert 15.9 < capped < 16.0 and not detector.accepts(non_cells).any()
    # At least the base model's own threshold where no non-cell lies below it; not capped with
    # nothing to keep out.
    assert capped_threshold(detector, 5.0, 9.0, non_cells) == 9.0
    assert capped_threshold(detector, 30.0, 20.0, non_cells) < 16.0
    assert capped_threshold(detector, 30.0, 9.0, None) == 30.0


def test_cells_scattered_far_from_the_base_classes_do_not_open_the_door_to_non_cells() -> None:
    # A laboratory whose cells lie far from the base classes and spread widely: its own
    # cross-fitted scores are large, and so would be its threshold.
    generator = torch.Generator().manual_seed(0)
    detector = OodDetector(torch.tensor([[0.0, 0.0], [10.0, 0.0]]), torch.eye(2), threshold=9.0)
    base = torch.nn.Linear(2, 2)
    labels = torch.tensor([0, 1] * 6)
    centres = torch.tensor([[0.0, 20.0], [10.0, 20.0]])
    embedded = (centres[labels] + 4.0 * torch.randn(12, 2, generator=generator))[:, None]
    non_cells = torch.tensor([[5.0, 20.0], [5.0, 28.0]])
    args = (base, embedded, labels, detector, 1.0, AdaptConfig(steps=20), lambda _: None)
    open_door = adapt_head(*args)
    assert open_door.detector.accepts(non_cells).all()
    kept_out = adapt_head(*args, non_cells=non_cells)
    assert not kept_out.detector.accepts(non_cells).any()


@pytest.fixture(scope="module")
def adapted() -> tuple[CellClassifier, CellClassifier]:
    model, card, detector = load_artifact(DEFAULT_MODEL_PATH)
    assert detector is not None
    labelled = ["neutrophil", "lymphocyte", "monocyte"]  # the laboratory labels only these
    images = [stained_elsewhere(Image.open(pbc_fixtures()[name])) for name in labelled]
    labels = [card.classes.index(name) for name in labelled]
    result = adapt_model(model, detector, card.classes, card.preprocess, card.temperature,
                         images, labels,
                         AdaptConfig(steps=150), lambda _: None)
    assert result.cells == 3 and result.per_class == {"lymphocyte": 1, "monocyte": 1,
                                                      "neutrophil": 1}
    device = torch.device("cpu")
    lab_card = card.model_copy(update={"temperature": result.temperature})
    return (CellClassifier(model, card, device, detector),
            CellClassifier(result.model, lab_card, device, result.detector))


def test_the_laboratorys_labelled_cells_are_named_right_and_recognised(
    adapted: tuple[CellClassifier, CellClassifier],
) -> None:
    before, after = adapted
    for name in ("neutrophil", "lymphocyte", "monocyte"):
        cell = stained_elsewhere(Image.open(pbc_fixtures()[name]))
        [prediction] = after.classify_crops([cell])
        assert prediction.label == name
    # The base model calls this laboratory's neutrophil an eosinophil, and is sure of it.
    [wrong] = before.classify_crops([stained_elsewhere(Image.open(pbc_fixtures()["neutrophil"]))],
                                    reject_outliers=False)
    assert wrong.label == "eosinophil" and wrong.confidence > 0.9


def test_classes_the_laboratory_did_not_label_are_not_forgotten(
    adapted: tuple[CellClassifier, CellClassifier],
) -> None:
    before, after = adapted
    for name in ("basophil", "eosinophil", "erythroblast", "ig", "platelet"):
        cell = Image.open(pbc_fixtures()[name])
        assert before.classify_crops([cell])[0].label == name
        assert after.classify_crops([cell])[0].label == name


def test_adapting_leaves_the_base_model_untouched() -> None:
    model, card, detector = load_artifact(DEFAULT_MODEL_PATH)
    assert detector is not None
    head = model.classifier.weight.detach().clone()
    cell = stained_elsewhere(Image.open(pbc_fixtures()["neutrophil"]))
    adapt_model(model, detector, card.classes, card.preprocess, card.temperature, [cell],
                [card.classes.index("neutrophil")], AdaptConfig(steps=5, views=1),
                lambda _: None)
    assert torch.equal(model.classifier.weight, head)


def test_nothing_to_adapt_from_is_refused() -> None:
    model, card, detector = load_artifact(DEFAULT_MODEL_PATH)
    assert detector is not None
    with pytest.raises(ValueError, match="no labelled cells"):
        adapt_model(model, detector, card.classes, card.preprocess, 1.0, [], [], AdaptConfig(),
                    lambda _: None)


def test_distilled_base_cells_are_given_the_base_heads_own_probabilities() -> None:
    base = torch.nn.Linear(4, 3)
    cells = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    replayed, targets = DistilledCells(cells, base).batch(torch.Generator())
    assert torch.equal(replayed, cells)
    assert torch.allclose(targets, torch.softmax(base(cells), dim=1))


def test_every_view_of_a_base_cell_is_given_what_the_base_head_gives_it_as_framed() -> None:
    base = torch.nn.Linear(4, 3)
    generator = torch.Generator().manual_seed(0)
    framed, other_view = torch.randn(50, 4, generator=generator), torch.randn(50, 4,
                                                                          generator=generator)
    replayed, targets = DistilledCells(torch.stack([framed, other_view], dim=1),
                                       base).batch(torch.Generator())
    assert torch.equal(replayed[0::2], framed) and torch.equal(replayed[1::2], other_view)
    as_framed = torch.softmax(base(framed), dim=1)
    assert torch.allclose(targets[0::2], as_framed) and torch.allclose(targets[1::2], as_framed)


def test_a_second_source_is_learnt_while_the_base_cells_keep_their_answers() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.nn.Linear(2, 3)
    with torch.no_grad():  # the base head: class 0 left, class 1 right, class 2 far up
        base.weight.copy_(torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]]))
        base.bias.copy_(torch.tensor([0.0, 0.0, -8.0]))
    base_cells = torch.randn(400, 2, generator=generator) * torch.tensor([2.0, 0.5])
    # The new source's class-2 cells sit at the left, where the base head says class 0.
    source = torch.tensor([-3.0, 1.5]) + 0.2 * torch.randn(40, 2, generator=generator)
    assert set(base(source).argmax(1).tolist()) == {0}
    detector = OodDetector(torch.zeros(3, 2), torch.eye(2), threshold=1.0)
    head = fit_head(base, source, torch.full((40,), 2), BaseGaussians.of(detector),
                    SOURCE_CONFIG, lambda _: None, base_cells)
    with torch.no_grad():
        assert (head(source).argmax(1) == 2).float().mean() > 0.95
        kept = (head(base_cells).argmax(1) == base(base_cells).argmax(1)).float().mean()
    assert kept > 0.95


def test_a_second_source_keeps_the_base_models_calibration() -> None:
    base = torch.nn.Linear(2, 2)
    detector = OodDetector(torch.zeros(2, 2), torch.eye(2), threshold=3.0)
    generator = torch.Generator().manual_seed(0)
    embedded = torch.randn(8, 1, 2, generator=generator)
    labels = torch.tensor([0, 1] * 4)
    fitted = adapt_head(base, embedded, labels, detector, 0.5,
                        replace(SOURCE_CONFIG, steps=5), lambda _: None,
                        torch.randn(20, 2, generator=generator))
    assert fitted.temperature == 0.5 and fitted.detector.threshold == 3.0
    assert len(fitted.detector.means) == 4  # the new source's class means join the base ones


def test_zoomed_views_teach_the_head_but_the_rejection_step_keeps_the_cells_as_framed() -> None:
    base = torch.nn.Linear(2, 2)
    detector = OodDetector(torch.zeros(2, 2), torch.eye(2), threshold=3.0)
    generator = torch.Generator().manual_seed(0)
    framed = torch.randn(8, 2, generator=generator)
    embedded = torch.stack([framed, framed + 20.0], dim=1)  # one view framed, one zoomed
    labels = torch.tensor([0, 1] * 4)
    fitted = adapt_head(base, embedded, labels, detector, 0.5,
                        replace(SOURCE_CONFIG, views=1, steps=5), lambda _: None,
                        torch.randn(20, 2, generator=generator))
    assert torch.allclose(fitted.detector.means[2:],
                          torch.stack([framed[labels == c].mean(0) for c in (0, 1)]))


def test_an_adapted_model_can_be_adapted_again() -> None:
    """Its detector holds the laboratory's means after the classes' own: only the classes' own
    are replayed, as the classes they are."""
    base = torch.nn.Linear(2, 2)
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]])  # the third: a lab's mean
    detector = OodDetector(means, torch.eye(2), threshold=9.0)
    lab = torch.tensor([[10.0, 1.0], [0.0, 1.0]])
    fitted = adapt_head(base, lab[:, None], torch.tensor([1, 0]), detector, 1.0,
                        AdaptConfig(steps=100, recalibrate=False), lambda _: None)
    with torch.no_grad():
        assert fitted.head(means[:2]).argmax(1).tolist() == [0, 1]
    assert len(fitted.detector.means) == 5  # the earlier laboratory's mean is kept
