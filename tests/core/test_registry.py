"""The model registry: one active version; promote and rollback walk its history."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.enums import ModelStatus, Role
from core.registry import (
    RegistryError,
    active_model,
    add_candidate,
    list_models,
    promote,
    register_model,
    rollback,
)
from tests.core.conftest import Lab
from vision.model.artifact import ModelCard


def _card(version: str) -> ModelCard:
    return ModelCard(version=version, classes=["a"], sha256=version[-1] * 64,
                     metrics={"test": {"accuracy": 0.98, "macro_f1": 0.97}})


def test_the_first_registered_model_becomes_active(sessions: sessionmaker[Session]) -> None:
    first = register_model(sessions, _card("base"), "base.safetensors")
    assert register_model(sessions, _card("base"), "base.safetensors") == first
    register_model(sessions, _card("other"), "other.safetensors")
    assert active_model(sessions).version == "base"  # type: ignore[union-attr]


def test_promote_and_rollback_switch_the_active_version(sessions: sessionmaker[Session]) -> None:
    register_model(sessions, _card("base"), "base.safetensors")
    add_candidate(sessions, _card("rt1"), "rt1.safetensors", "base", {"passed": True})
    add_candidate(sessions, _card("rt2"), "rt2.safetensors", "rt1",
                  {"passed": False, "reasons": ["worse"]})
    promote(sessions, "rt1")
    promote(sessions, "rt2")
    assert active_model(sessions).version == "rt2"  # type: ignore[union-attr]

    restored, removed = rollback(sessions)
    assert (restored.version, removed.version) == ("rt1", "rt2")
    restored, removed = rollback(sessions)  # rt2 was rolled back: skipped from now on
    assert (restored.version, removed.version) == ("base", "rt1")
    with pytest.raises(RegistryError):
        rollback(sessions)
    statuses = {e.ref.version: e.status for e in list_models(sessions)}
    assert statuses == {"base": ModelStatus.ACTIVE, "rt1": ModelStatus.ROLLED_BACK,
                        "rt2": ModelStatus.ROLLED_BACK}


def test_promoting_an_unknown_or_active_version_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    register_model(sessions, _card("base"), "base.safetensors")
    for version in ("nope", "base"):
        with pytest.raises(RegistryError):
            promote(sessions, version)


def _groups(sessions: sessionmaker[Session], *names: str) -> list[int]:
    from core.db.models import Group

    with sessions() as session:
        rows = [Group(name=name) for name in names]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def test_a_laboratorys_own_version_serves_that_group_only(
    sessions: sessionmaker[Session],
) -> None:
    lab_a, lab_b = _groups(sessions, "lab-a", "lab-b")
    register_model(sessions, _card("base"), "base.safetensors")
    add_candidate(sessions, _card("a1"), "a1.safetensors", "base", {"passed": True}, lab_a)
    assert active_model(sessions, lab_a).version == "base"  # type: ignore[union-attr]
    promote(sessions, "a1")
    assert active_model(sessions, lab_a).version == "a1"  # type: ignore[union-attr]
    assert active_model(sessions, lab_b).version == "base"  # type: ignore[union-attr]
    assert active_model(sessions).version == "base"  # type: ignore[union-attr]
    # A new laboratory-wide version changes nothing for the group with its own.
    add_candidate(sessions, _card("rt1"), "rt1.safetensors", "base", {"passed": True})
    promote(sessions, "rt1")
    assert active_model(sessions, lab_a).version == "a1"  # type: ignore[union-attr]
    assert active_model(sessions, lab_b).version == "rt1"  # type: ignore[union-attr]
    groups = {e.ref.version: e.group for e in list_models(sessions)}
    assert groups == {"base": None, "a1": "lab-a", "rt1": None}


def test_rolling_back_a_laboratorys_version_stays_within_that_laboratory(
    sessions: sessionmaker[Session],
) -> None:
    lab_a, lab_b = _groups(sessions, "lab-a", "lab-b")
    register_model(sessions, _card("base"), "base.safetensors")
    for version in ("a1", "a2"):
        add_candidate(sessions, _card(version), f"{version}.safetensors", "base",
                      {"passed": True}, lab_a)
        promote(sessions, version)
    restored, removed = rollback(sessions, lab_a)
    assert (restored.version, removed.version) == ("a1", "a2")
    restored, removed = rollback(sessions, lab_a)  # its first own version: back to the base
    assert (restored.version, removed.version) == ("base", "a1")
    assert active_model(sessions, lab_a).version == "base"  # type: ignore[union-attr]
    with pytest.raises(RegistryError):  # nothing left to roll back, for anyone
        rollback(sessions, lab_b)
    assert active_model(sessions).version == "base"  # type: ignore[union-attr]


def test_an_admin_switches_their_own_laboratorys_versions_only(lab: Lab) -> None:
    admin_a = lab.member(50, Role.ADMIN, group="lab-a")
    admin_b = lab.member(51, Role.ADMIN, group="lab-b")
    add_candidate(lab.sessions, _card("a1"), "a1.safetensors", "m1", {"passed": False},
                  admin_a.group_id)
    add_candidate(lab.sessions, _card("rt1"), "rt1.safetensors", "m1", {"passed": True})
    # Another laboratory's version is not even named to them; the shared one is the owner's.
    with pytest.raises(RegistryError, match="no model version 'a1' for your laboratory"):
        promote(lab.sessions, "a1", by=admin_b)
    with pytest.raises(RegistryError, match="only a laboratory-wide owner"):
        promote(lab.sessions, "rt1", by=admin_a)
    assert active_model(lab.sessions, admin_b.group_id).version == "m1"  # type: ignore[union-attr]

    assert promote(lab.sessions, "a1", by=admin_a).version == "a1"
    # Laboratory B has no version of its own: its rollback would be everyone's.
    with pytest.raises(RegistryError, match="only a laboratory-wide owner"):
        rollback(lab.sessions, admin_b.group_id, by=admin_b)
    assert active_model(lab.sessions, admin_a.group_id).version == "a1"  # type: ignore[union-attr]
    restored, removed = rollback(lab.sessions, admin_a.group_id, by=admin_a)
    assert (restored.version, removed.version) == ("m1", "a1")
    assert promote(lab.sessions, "rt1", by=lab.admin).version == "rt1"  # the owner may


def test_an_admin_lists_the_shared_versions_and_their_own_laboratorys(lab: Lab) -> None:
    admin_a = lab.member(52, Role.ADMIN, group="lab-a")
    admin_b = lab.member(53, Role.ADMIN, group="lab-b")
    add_candidate(lab.sessions, _card("a1"), "a1.safetensors", "m1", {"passed": True},
                  admin_a.group_id)
    seen_by_b = {e.ref.version for e in list_models(lab.sessions, for_member=admin_b)}
    seen_by_owner = {e.ref.version for e in list_models(lab.sessions, for_member=lab.admin)}
    assert (seen_by_b, seen_by_owner) == ({"m1"}, {"m1", "a1"})


def test_a_long_version_typed_by_an_admin_is_not_echoed_in_full(lab: Lab) -> None:
    with pytest.raises(RegistryError) as refused:
        promote(lab.sessions, "\u200b" * 1200, by=lab.admin)
    assert len(str(refused.value)) < 120
