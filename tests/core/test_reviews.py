"""Reviewers confirm or correct labels; the checks are made on the server's side."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core.access import AccessDenied
from core.db.models import Submission, utcnow
from core.db.session import transaction
from core.enums import Role
from core.reviews import (
    PhotoGone,
    confirm,
    correct,
    expert_examples,
    reviewable_cell,
    reviewable_cells,
)
from tests.core.conftest import Lab


def test_a_plain_user_cannot_review(lab: Lab) -> None:
    user = lab.member(20)
    submission = lab.photo(user, ["monocyte"])
    with pytest.raises(AccessDenied):
        reviewable_cells(lab.sessions, user, submission)
    with pytest.raises(AccessDenied):
        confirm(lab.sessions, user, submission)


def test_a_reviewer_of_another_laboratory_cannot_touch_the_cells(lab: Lab) -> None:
    owner = lab.member(21, group="lab-a")
    outsider = lab.member(22, Role.REVIEWER, group="lab-b")
    submission = lab.photo(owner, ["monocyte"])
    insider = lab.member(23, Role.REVIEWER, group="lab-a")
    [cell] = reviewable_cells(lab.sessions, insider, submission)
    for attempt in (lambda: reviewable_cells(lab.sessions, outsider, submission),
                    lambda: reviewable_cell(lab.sessions, outsider, cell.cell_id),
                    lambda: correct(lab.sessions, outsider, cell.cell_id, "basophil"),
                    lambda: confirm(lab.sessions, outsider, submission)):
        with pytest.raises(AccessDenied):
            attempt()


def test_confirmed_and_corrected_cells_become_training_examples(lab: Lab) -> None:
    reviewer = lab.member(24, Role.REVIEWER)
    confirmed = lab.photo(reviewer, ["lymphocyte"])
    corrected = lab.photo(reviewer, ["neutrophil", "monocyte"], mode="field")
    assert confirm(lab.sessions, reviewer, confirmed) == 1
    assert confirm(lab.sessions, reviewer, confirmed) == 0  # nothing left to confirm
    second = reviewable_cells(lab.sessions, reviewer, corrected)[1]
    result = correct(lab.sessions, reviewer, second.cell_id, "basophil")
    assert (result.cell_number, result.previous_label, result.label) == (2, "monocyte",
                                                                        "basophil")
    examples = expert_examples(lab.sessions)
    assert [(e.label, e.whole_image) for e in examples] == [("lymphocyte", True),
                                                             ("basophil", False)]
    assert examples[1].box == (10, 0, 19, 9)


def test_an_unknown_class_is_refused(lab: Lab) -> None:
    reviewer = lab.member(25, Role.REVIEWER)
    [cell] = reviewable_cells(lab.sessions, reviewer, lab.photo(reviewer, ["monocyte"]))
    with pytest.raises(ValueError):
        correct(lab.sessions, reviewer, cell.cell_id, "dragon")


def test_a_purged_photos_result_can_no_longer_be_reviewed_nor_learnt_from(lab: Lab) -> None:
    reviewer = lab.member(25, Role.REVIEWER)
    kept = lab.photo(reviewer, ["eosinophil"])
    purged = lab.photo(reviewer, ["lymphocyte", "monocyte"], mode="field")
    assert confirm(lab.sessions, reviewer, kept) == 1
    cell = reviewable_cells(lab.sessions, reviewer, purged)[0]
    with transaction(lab.sessions) as session:
        session.execute(update(Submission).where(Submission.id == purged)
                        .values(image_purged_at=utcnow()))
    # An old button pressed after the purge: nothing is stored.
    with pytest.raises(PhotoGone):
        confirm(lab.sessions, reviewer, purged)
    with pytest.raises(PhotoGone):
        correct(lab.sessions, reviewer, cell.cell_id, "basophil")
    assert [e.label for e in expert_examples(lab.sessions)] == ["eosinophil"]


def test_a_photo_sent_twice_is_learnt_once_with_the_experts_latest_label(lab: Lab) -> None:
    reviewer = lab.member(26, Role.REVIEWER)
    first = lab.photo(reviewer, ["monocyte"], sha256="b" * 64)
    other = lab.photo(reviewer, ["neutrophil"], sha256="c" * 64)
    again = lab.photo(reviewer, ["monocyte"], sha256="b" * 64)
    [cell] = reviewable_cells(lab.sessions, reviewer, first)
    correct(lab.sessions, reviewer, cell.cell_id, "lymphocyte")
    confirm(lab.sessions, reviewer, other)
    [cell_again] = reviewable_cells(lab.sessions, reviewer, again)
    correct(lab.sessions, reviewer, cell_again.cell_id, "reactive_lymphocyte")
    examples = expert_examples(lab.sessions)
    assert [(e.image_sha256[0], e.label) for e in examples] == [("b", "reactive_lymphocyte"),
                                                               ("c", "neutrophil")]
