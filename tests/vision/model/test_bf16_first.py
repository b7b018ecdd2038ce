"""Scored in bfloat16 first, a cell keeps that answer only where fp32 would give the same: the
sure ones keep their label and a confidence within a hair of fp32's, the close calls get fp32's
own numbers."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH
from vision.model.classifier import SURE_IN_BF16, CellClassifier, native_bf16

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "pbc").glob("*.jpg"))

pytestmark = pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16")


def _cells() -> list[Image.Image]:
    """The fixture cells, and blends of two different ones: the blends are close calls."""
    cells = [Image.open(path).convert("RGB").resize((288, 288)) for path in FIXTURES]
    blends = [Image.blend(a, b, share) for a, b in pairwise(cells)
              for share in (0.35, 0.5, 0.65)]
    return cells + blends


@pytest.fixture(scope="module")
def exact() -> CellClassifier:
    return CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")


@pytest.mark.parametrize("torchscript", [False, True])
def test_bf16_first_names_every_cell_as_fp32_does(exact: CellClassifier,
                                                  torchscript: bool) -> None:
    fast = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", fast=True)
    if torchscript:
        fast.compile_for_cpu()
    cells = _cells()
    probs, ood = fast.scores(cells)
    expected_probs, expected_ood = exact.scores(cells)
    assert ood is not None and expected_ood is not None
    assert probs.argmax(1).tolist() == expected_probs.argmax(1).tolist()
    kept = probs.max(1).values >= SURE_IN_BF16  # bfloat16's answer stood
    assert (~kept).sum() >= 2, "the blends should include close calls"
    # The close calls are fp32's own answers (to float precision: another batch composition).
    assert torch.allclose(probs[~kept], expected_probs[~kept], atol=1e-5)
    assert torch.allclose(ood[~kept], expected_ood[~kept], rtol=1e-4)
    # The sure ones kept bfloat16's: not fp32's, but a few thousandths at most from them.
    assert 1e-5 < (probs[kept] - expected_probs[kept]).abs().max() < 0.005


def test_warming_up_changes_no_answer(exact: CellClassifier) -> None:
    warmed = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", fast=True)
    warmed.compile_for_cpu()
    warmed.warm_up()
    cold = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", fast=True)
    cold.compile_for_cpu()
    cells = _cells()
    assert torch.allclose(warmed.scores(cells)[0], cold.scores(cells)[0], atol=1e-6)


def test_a_screen_in_bfloat16_first_names_and_flags_every_cell_as_in_fp32() -> None:
    screened_exact = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu",
                                                  screen=ABNORMAL_MODEL_PATH)
    screened_fast = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", fast=True,
                                                 screen=ABNORMAL_MODEL_PATH)
    cells = _cells()
    exact_answers = screened_exact.classify_crops(cells)
    fast_answers = screened_fast.classify_crops(cells)
    assert [a.label for a in fast_answers] == [a.label for a in exact_answers]
    assert ([screened_fast.possible_blast(a) for a in fast_answers]
            == [screened_exact.possible_blast(a) for a in exact_answers])
    assert max(abs(a.confidence - b.confidence)
               for a, b in zip(fast_answers, exact_answers, strict=True)) < 0.005
