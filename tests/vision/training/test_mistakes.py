"""Which cells a model got wrong, most confident first, and the contact sheet of them."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from tests.conftest import pbc_fixtures
from vision.data import Sample
from vision.training.mistakes import format_mistakes, mistakes_of, save_mistake_gallery

CLASSES = ["ig", "neutrophil", "basophil"]


def _samples() -> list[Sample]:
    cells = pbc_fixtures()
    return [Sample(cells["ig"], 0), Sample(cells["neutrophil"], 1), Sample(cells["basophil"], 2)]


def test_only_wrong_answers_are_mistakes_and_the_most_confident_come_first() -> None:
    probabilities = torch.tensor([[0.3, 0.7, 0.0],   # ig called neutrophil, 70%
                                  [0.05, 0.95, 0.0],  # right
                                  [0.9, 0.0, 0.1]])   # basophil called ig, 90%
    mistakes = mistakes_of(_samples(), probabilities, CLASSES)
    assert [(m.true, m.predicted) for m in mistakes] == [("basophil", "ig"), ("ig", "neutrophil")]
    assert mistakes[0].confidence == torch.tensor(0.9).item()
    assert mistakes[0].to_dict()["path"].endswith("BA_101381.jpg")


def test_the_gallery_draws_each_mistake_as_a_captioned_tile(tmp_path: Path) -> None:
    probabilities = torch.tensor([[0.3, 0.7, 0.0], [0.6, 0.4, 0.0], [0.9, 0.0, 0.1]])
    mistakes = mistakes_of(_samples(), probabilities, CLASSES)
    drawn = save_mistake_gallery(mistakes, tmp_path / "wrong.png", "v5 on pbc/val", tile=100,
                                 columns=2)
    assert drawn == 3
    with Image.open(tmp_path / "wrong.png") as sheet:
        assert sheet.size == (200, 36 + 2 * (100 + 40))  # two rows of two columns
        # The first tile is the basophil itself, not a blank square.
        assert len(sheet.crop((0, 36, 100, 136)).getcolors(100 * 100) or []) > 100


def test_a_long_list_is_cut_with_a_count_of_the_rest() -> None:
    probabilities = torch.tensor([[0.0, 1.0, 0.0]] * 3)
    mistakes = mistakes_of(_samples() * 4, probabilities.repeat(4, 1), CLASSES)
    text = format_mistakes(mistakes, limit=3)
    assert text.splitlines()[0] == "misclassified: 8"
    assert text.endswith("... and 5 more (--json lists them all)")
