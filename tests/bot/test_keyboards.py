"""The buttons a reviewer corrects a cell with."""

from __future__ import annotations

from bot.callbacks import parse_numbers
from bot.keyboards import candidate_decision, class_choice
from vision.labels import EXPERT_LABELS, NOT_RECOGNISED


def _labels(cell_id: int) -> list[tuple[str, str]]:
    return [(b.text, str(b.callback_data)) for row in class_choice(cell_id).inline_keyboard
            for b in row]


def test_the_classes_come_in_clinical_order_then_artefact_and_cancel() -> None:
    buttons = _labels(7)
    names = [text for text, _data in buttons]
    assert names[:4] == ["Blast", "Promonocyte", "Neutrophil", "Lymphocyte"]
    assert buttons[-2] == ("🚫 Artefact / not a cell",
                           f"set:7:{EXPERT_LABELS.index(NOT_RECOGNISED)}")
    assert buttons[-1] == ("✖️ Cancel", "cx:7")


def test_every_button_carries_data_the_dispatcher_accepts() -> None:
    for _text, data in _labels(2**31 - 1):
        kind, _, rest = data.partition(":")
        assert parse_numbers(kind, rest)
    for row in candidate_decision(12).inline_keyboard:
        for button in row:
            kind, _, rest = str(button.callback_data).partition(":")
            assert parse_numbers(kind, rest) == [12]
