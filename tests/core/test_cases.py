"""Cases belong to a laboratory group; their differential is the sum over their photos."""

from __future__ import annotations

import pytest

from core.access import AccessDenied
from core.cases import InvalidReference, case_detail, find_case, history, open_case
from core.enums import Role
from core.reviews import correct, reviewable_cells
from tests.core.conftest import Lab


def test_photos_join_the_open_case_and_their_counts_add_up(lab: Lab) -> None:
    tech = lab.member(10)
    detail, created = open_case(lab.sessions, tech, "H24-0193")
    assert created and detail.photos == []
    tech = lab.member(10)  # re-read: the open case is now the member's current case
    lab.photo(tech, ["neutrophil", "lymphocyte"], mode="field")
    lab.photo(tech, ["neutrophil"])
    again, created = open_case(lab.sessions, tech, "H24-0193")
    assert not created
    assert [p.number for p in again.photos] == [1, 2]
    assert again.totals == {"neutrophil": 2, "lymphocyte": 1}
    assert again.rbc_total == 1


def test_a_case_names_every_model_behind_its_answers(lab: Lab) -> None:
    tech = lab.member(14)
    open_case(lab.sessions, tech, "H24-0194")
    tech = lab.member(14)
    lab.photo(tech, ["blast"], screen_model="hv-lite0-v10-abnormal")
    lab.photo(tech, ["neutrophil"], mode="field")
    detail, _ = open_case(lab.sessions, tech, "H24-0194")
    assert detail.models_used == ["m1", "blast screen hv-lite0-v10-abnormal",
                                  "red cells colour-rule"]


def test_a_photo_without_a_case_goes_to_the_automatic_case_of_the_day(lab: Lab) -> None:
    tech = lab.member(11)
    lab.photo(tech, ["monocyte"])
    lab.photo(tech, ["eosinophil"])
    [line] = history(lab.sessions, tech).lines
    assert line.reference.startswith("auto-") and line.reference.endswith("-11")
    assert (line.photos, line.white_cells) == (2, 2)


def test_another_laboratory_cannot_see_or_find_the_case(lab: Lab) -> None:
    alice = lab.member(12, group="lab-a")
    bob = lab.member(13, group="lab-b")
    detail, _ = open_case(lab.sessions, alice, "SHARED-1")
    assert case_detail(lab.sessions, bob, detail.case_id) is None
    assert find_case(lab.sessions, bob, "SHARED-1") is None
    assert history(lab.sessions, bob).lines == []
    own, created = open_case(lab.sessions, bob, "SHARED-1")
    assert created and own.case_id != detail.case_id and own.group == "lab-b"


def test_history_is_paged_most_recent_first(lab: Lab) -> None:
    tech = lab.member(14)
    for number in range(7):
        open_case(lab.sessions, tech, f"P-{number}")
    first, second = history(lab.sessions, tech, 0), history(lab.sessions, tech, 1)
    assert (first.pages, len(first.lines), len(second.lines)) == (2, 5, 2)
    assert first.lines[0].reference == "P-6"
    assert history(lab.sessions, tech, 99).page == 1  # clamped to the last page


@pytest.mark.parametrize("reference", ["", "Jane Doe", "x" * 65, "../etc", "-lead"])
def test_a_reference_must_look_like_a_sample_reference(lab: Lab, reference: str) -> None:
    with pytest.raises(InvalidReference):
        open_case(lab.sessions, lab.member(15), reference)


def test_pending_users_have_no_cases(lab: Lab) -> None:
    pending = lab.member(16, Role.PENDING)
    with pytest.raises(AccessDenied):
        history(lab.sessions, pending)


def test_a_correction_changes_the_case_totals_and_is_listed(lab: Lab) -> None:
    reviewer = lab.member(17, Role.REVIEWER)
    open_case(lab.sessions, reviewer, "C-1")
    reviewer = lab.member(17, Role.REVIEWER)
    submission = lab.photo(reviewer, ["neutrophil", "neutrophil"], mode="field")
    first = reviewable_cells(lab.sessions, reviewer, submission)[0]
    correct(lab.sessions, reviewer, first.cell_id, "ig")
    detail, _ = open_case(lab.sessions, reviewer, "C-1")
    assert detail.totals == {"neutrophil": 1, "ig": 1}
    [correction] = detail.corrections
    assert (correction.photo_number, correction.cell_number) == (1, 1)
    assert (correction.previous_label, correction.label, correction.reviewer) == (
        "neutrophil", "ig", "@u17")
    [line] = history(lab.sessions, reviewer).lines
    assert line.corrections == 1


def test_a_photo_says_why_its_cells_await_review_until_an_expert_decides(lab: Lab) -> None:
    reviewer = lab.member(18, Role.REVIEWER)
    open_case(lab.sessions, reviewer, "C-2")
    reviewer = lab.member(18, Role.REVIEWER)
    submission = lab.photo(reviewer, ["monocyte", "lymphocyte"], mode="field",
                           reasons=("unusual", "cut_by_edge"))
    [photo] = open_case(lab.sessions, reviewer, "C-2")[0].photos
    assert photo.flagged == 2 and photo.flag_reasons == {"unusual": 2, "cut_by_edge": 2}
    first = reviewable_cells(lab.sessions, reviewer, submission)[0]
    correct(lab.sessions, reviewer, first.cell_id, "lymphocyte")
    [photo] = open_case(lab.sessions, reviewer, "C-2")[0].photos
    assert photo.flagged == 1 and photo.flag_reasons == {"unusual": 1, "cut_by_edge": 1}


def test_a_cell_an_expert_calls_an_artefact_leaves_the_differential(lab: Lab) -> None:
    reviewer = lab.member(19, Role.REVIEWER)
    open_case(lab.sessions, reviewer, "C-3")
    reviewer = lab.member(19, Role.REVIEWER)
    submission = lab.photo(reviewer, ["lymphocyte", "neutrophil"], mode="field")
    first = reviewable_cells(lab.sessions, reviewer, submission)[0]
    correct(lab.sessions, reviewer, first.cell_id, "not_recognised")
    detail, _ = open_case(lab.sessions, reviewer, "C-3")
    assert detail.totals == {"neutrophil": 1}
