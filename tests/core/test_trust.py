"""A laboratory earns trust: every answer to confirm until its experts have measured the bot,
then unflagged only from a threshold that keeps wrong unflagged answers within 2%."""

from __future__ import annotations

import random

import pytest

from core.trust import (
    BELOW_MEASURED,
    MIN_REVIEWED,
    NEW_LABORATORY,
    TARGET_WRONG,
    TO_CONFIRM,
    ScoredAnswer,
    Trust,
    apply,
    measure,
)
from vision.field.results import REVIEW_REASONS, Analysis, Cell, flagged_by_model


def answers(*groups: tuple[int, float, bool]) -> list[ScoredAnswer]:
    """``(count, confidence, right)`` groups of unflagged answers."""
    return [ScoredAnswer(confidence, right, False)
            for count, confidence, right in groups for _ in range(count)]


def analysis(*cells: Cell) -> Analysis:
    return Analysis("field", 100, 100, list(cells), [], 0, 0, None, "m1")


def test_a_new_laboratory_confirms_every_answer_and_is_told_how_many_reviews_it_needs() -> None:
    assert NEW_LABORATORY.threshold is None and NEW_LABORATORY.needed == MIN_REVIEWED == 49
    assert measure([]) == NEW_LABORATORY
    trust = measure(answers((12, 0.99, True)))
    assert (trust.threshold, trust.needed, trust.reviewed) == (None, 37, 12)
    assert "37 more of those marked only" in trust.line() and trust.line().startswith("🧪")


def test_49_agreeing_answers_are_the_fewest_that_bound_the_wrong_share_at_2_percent() -> None:
    assert measure(answers((48, 0.97, True))).threshold is None
    trust = measure(answers((49, 0.97, True)))
    assert trust.threshold == 0.97 and trust.needed == 0
    assert trust.line().startswith("✅ Measured in your laboratory: answers from 97% on")


def test_the_threshold_stops_above_the_first_confident_mistakes() -> None:
    # 100 right answers at 0.95-0.99, then mistakes among less confident ones.
    reviewed = answers(*[(20, c, True) for c in (0.99, 0.98, 0.97, 0.96, 0.95)],
                       (5, 0.80, True), (5, 0.70, False), (10, 0.60, True), (10, 0.50, False))
    trust = measure(reviewed)
    assert trust.threshold == 0.80
    above = [a for a in reviewed if a.confidence >= (trust.threshold or 1)]
    assert sum(not a.right for a in above) / len(above) <= TARGET_WRONG
    assert (trust.reviewed, trust.agreeing) == (130, 115)


def test_a_confident_mistake_at_the_top_needs_more_agreeing_answers_to_outweigh_it() -> None:
    trust = measure(answers((1, 0.999, False), (60, 0.99, True)))
    # (1 + 1) / (n + 1) <= 2% needs n >= 99 answers above the threshold: 38 more.
    assert trust.threshold is None and trust.needed == 38


def test_too_many_mistakes_after_many_reviews_says_so_rather_than_counting_down() -> None:
    trust = measure(answers((150, 0.95, True), (50, 0.96, False)))
    assert trust.threshold is None and trust.needed == 0
    assert "too few to leave any unconfirmed" in trust.line()


def test_answers_the_model_flagged_itself_never_earn_the_threshold() -> None:
    flagged = [ScoredAnswer(0.99, True, True)] * 60
    assert measure(flagged).threshold is None
    trust = measure([*flagged, *answers((49, 0.9, True))])
    assert trust.threshold == 0.9 and trust.reviewed == 109


def test_ties_are_never_split_by_the_threshold() -> None:
    # The first 60 answers all at 0.9, 2 of them wrong: no threshold can accept only some.
    reviewed = answers((58, 0.9, True), (2, 0.9, False))
    assert measure(reviewed).threshold is None


@pytest.mark.parametrize("seed", range(5))
def test_on_any_reviews_the_wrong_share_above_the_threshold_stays_within_the_target(
    seed: int,
) -> None:
    rng = random.Random(seed)
    reviewed = []
    for _ in range(400):
        confidence = rng.random()
        reviewed.append(ScoredAnswer(confidence, rng.random() < confidence ** 0.3, False))
    trust = measure(reviewed)
    if trust.threshold is not None:
        above = [a for a in reviewed if a.confidence >= trust.threshold]
        assert sum(not a.right for a in above) / len(above) <= TARGET_WRONG


def test_apply_marks_cells_by_the_regime_and_keeps_the_models_own_reasons() -> None:
    sure = Cell("wbc", (0, 0, 9, 9), label="neutrophil", confidence=0.99)
    unsure = Cell("wbc", (10, 0, 19, 9), label="monocyte", confidence=0.6, review=True,
                  reasons=("unsure",))
    red = Cell("rbc", (20, 0, 29, 9))
    learning = apply(analysis(sure, unsure, red), NEW_LABORATORY).cells
    assert [c.reasons for c in learning] == [(TO_CONFIRM,), ("unsure", TO_CONFIRM), ()]
    assert [c.review for c in learning] == [True, True, False]
    measured = apply(analysis(sure, unsure, red), Trust(100, 98, 0.95, 0)).cells
    assert [c.reasons for c in measured] == [(), ("unsure", BELOW_MEASURED), ()]
    assert not measured[0].review
    assert all(reason in REVIEW_REASONS for reason in (TO_CONFIRM, BELOW_MEASURED))


def test_a_stored_cell_counts_as_flagged_by_the_model_only_for_the_models_own_reasons() -> None:
    assert not flagged_by_model(False, None)
    assert not flagged_by_model(True, [TO_CONFIRM])
    assert flagged_by_model(True, ["unusual", BELOW_MEASURED])
    assert flagged_by_model(True, None)  # stored before reasons were


def test_trust_survives_the_database_round_trip() -> None:
    trust = Trust(120, 115, 0.93, 0)
    assert Trust.from_dict(trust.to_dict()) == trust
    assert Trust.from_dict(NEW_LABORATORY.to_dict()) == NEW_LABORATORY
