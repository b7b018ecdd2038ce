"""A laboratory's standing: its experts' reviews measure the version serving it, per laboratory,
and tell its admins once when an adaptation is worth running."""

from __future__ import annotations

from core.access import Member
from core.enums import Role
from core.laboratory import group_id_named, propose_adaptation, serving_trust, standing
from core.registry import add_candidate, register_model
from core.reviews import confirm, correct, reviewable_cells
from core.trust import NEW_LABORATORY
from tests.core.conftest import Lab
from vision.model.artifact import ModelCard


def reviewed_field(lab: Lab, reviewer: Member, labels: list[str], confidence: float,
                   model_id: int | None = None, corrections: dict[int, str] | None = None) -> None:
    """A field of white cells the reviewer corrects (``corrections``: cell index -> label), then
    confirms the rest."""
    submission = lab.photo(reviewer, labels, mode="field", confidence=confidence,
                           model_id=model_id)
    cells = reviewable_cells(lab.sessions, reviewer, submission)
    for index, label in (corrections or {}).items():
        correct(lab.sessions, reviewer, cells[index].cell_id, label)
    confirm(lab.sessions, reviewer, submission)


def group_id(lab: Lab, name: str) -> int:
    found = group_id_named(lab.sessions, name)
    assert found is not None
    return found


def test_a_laboratory_earns_its_threshold_from_its_own_reviews_only(lab: Lab) -> None:
    reviewer_a = lab.member(30, Role.REVIEWER, group="lab-a")
    lab.member(31, Role.REVIEWER, group="lab-b")
    reviewed_field(lab, reviewer_a, ["neutrophil"] * 30, 0.97)
    a, b = group_id(lab, "lab-a"), group_id(lab, "lab-b")
    assert serving_trust(lab.sessions, a, lab.model_id).needed == 19
    reviewed_field(lab, reviewer_a, ["lymphocyte"] * 19, 0.95)
    assert serving_trust(lab.sessions, a, lab.model_id).threshold == 0.95
    assert serving_trust(lab.sessions, b, lab.model_id) == NEW_LABORATORY
    assert serving_trust(lab.sessions, None, lab.model_id) == NEW_LABORATORY


def test_another_versions_answers_do_not_measure_the_one_serving(lab: Lab) -> None:
    reviewer = lab.member(32, Role.REVIEWER, group="lab-a")
    other = register_model(lab.sessions, ModelCard(version="m2", classes=["a"],
                                                   sha256="1" * 64), "models/m2.safetensors")
    reviewed_field(lab, reviewer, ["neutrophil"] * 60, 0.97, model_id=other)
    a = group_id(lab, "lab-a")
    assert serving_trust(lab.sessions, a, other).measured
    assert serving_trust(lab.sessions, a, lab.model_id) == NEW_LABORATORY


def test_an_adapted_version_starts_from_its_held_out_answers(lab: Lab) -> None:
    lab.member(33, Role.REVIEWER, group="lab-a")
    a = group_id(lab, "lab-a")
    answers = [[0.96, True, False]] * 49 + [[0.5, False, False]]
    version = add_candidate(lab.sessions, ModelCard(
        version="m1-lab-a-a1", classes=["a"], sha256="2" * 64,
        metrics={"expert_cells": {"of": 50, "candidate": 49, "active": 40, "answers": answers}}),
        "models/m1-lab-a-a1.safetensors", "m1", {"passed": True}, a)
    trust = serving_trust(lab.sessions, a, version)
    assert (trust.threshold, trust.reviewed, trust.agreeing) == (0.96, 50, 49)


def test_the_standing_reports_agreement_and_trust_of_the_serving_version(lab: Lab) -> None:
    reviewer = lab.member(34, Role.REVIEWER, group="lab-a")
    reviewed_field(lab, reviewer, ["monocyte"] * 4, 0.95, corrections={0: "lymphocyte"})
    found = standing(lab.sessions, group_id(lab, "lab-a"))
    assert (found.group, found.version) == ("lab-a", "m1")
    assert found.agreement.overall.text() == "75% of 4"
    assert [(label, a.text()) for label, a in found.agreement.classes] == [
        ("lymphocyte", "0% of 1"), ("monocyte", "100% of 3")]
    # One mistake among the answers: (1 + 1) / (n + 1) <= 2% needs 99 of them, 95 more.
    assert found.trust.needed == 95


def test_admins_are_told_once_when_enough_new_cells_are_reviewed(lab: Lab) -> None:
    reviewer = lab.member(35, Role.REVIEWER, group="lab-a")
    admin_a = lab.member(36, Role.ADMIN, group="lab-a")
    lab.member(37, Role.ADMIN, group="lab-b")
    a = group_id(lab, "lab-a")
    reviewed_field(lab, reviewer, ["monocyte"] * 3, 0.95)
    assert propose_adaptation(lab.sessions, a, after=4) is None
    reviewed_field(lab, reviewer, ["neutrophil"] * 2, 0.95, corrections={0: "eosinophil"})
    proposal = propose_adaptation(lab.sessions, a, after=4)
    assert proposal is not None
    assert (proposal.group, proposal.new_cells, proposal.agreement.kept) == ("lab-a", 5, 4)
    # The laboratory's admins and the owners; not another laboratory's admins.
    assert proposal.admin_chat_ids == sorted([lab.admin.telegram_id, admin_a.telegram_id])
    assert propose_adaptation(lab.sessions, a, after=4) is None  # once

    # A new own version starts the count again.
    add_candidate(lab.sessions, ModelCard(version="m1-lab-a-a2", classes=["a"], sha256="3" * 64),
                  "models/m1-lab-a-a2.safetensors", "m1", {"passed": False}, a)
    reviewed_field(lab, reviewer, ["lymphocyte"] * 3, 0.95)
    assert propose_adaptation(lab.sessions, a, after=4) is None
    reviewed_field(lab, reviewer, ["lymphocyte"], 0.95)
    again = propose_adaptation(lab.sessions, a, after=4)
    assert again is not None and again.new_cells == 4
    assert propose_adaptation(lab.sessions, None, after=4) is None
