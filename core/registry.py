"""The model registry: versions as database rows plus safetensors files.

One version is active laboratory-wide, and a group (one laboratory) may have its own active
version, adapted to its cells: that one serves the group, the laboratory-wide one everybody
else. Promote and rollback act within one such scope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.access import Member
from core.db.models import Group, ModelVersion, utcnow
from core.db.session import SessionFactory, transaction
from core.enums import ModelStatus

if TYPE_CHECKING:
    # Only its type: the card module brings torch, which the bot must not load.
    from vision.model.artifact import ModelCard


class RegistryError(Exception):
    """A switch that cannot be made; the message is fit to show an admin."""


@dataclass(frozen=True)
class ModelRef:
    id: int
    version: str
    path: str
    sha256: str
    group_id: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    ref: ModelRef
    status: ModelStatus
    created_at: datetime
    accuracy: float | None
    macro_f1: float | None
    parent_version: str | None
    gate: dict[str, Any] | None
    group: str | None = None  # the laboratory a version was adapted to
    # What it learnt from, "name (licence)" each (cards written before sources list none).
    sources: tuple[str, ...] = ()


def _shown(text: str, limit: int = 40) -> str:
    """A name as typed, cut short: an admin's argument is echoed, never at any length."""
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit]}…'"


def _ref(row: ModelVersion) -> ModelRef:
    return ModelRef(row.id, row.version, row.path, row.sha256, row.group_id)


def _scope(group_id: int | None) -> ColumnElement[bool]:
    return ModelVersion.group_id.is_(None) if group_id is None \
        else ModelVersion.group_id == group_id


def register_model(factory: SessionFactory, card: ModelCard, path: str) -> int:
    """The id of this version, registering it on first sight (active when nothing is).

    Workers starting together all try this at once: the first insert wins, the others read it.
    """
    try:
        return _register(factory, card, path)
    except IntegrityError:
        with factory() as session:
            existing = session.scalar(select(ModelVersion.id)
                                      .where(ModelVersion.version == card.version))
        if existing is None:
            raise
        return existing


def _register(factory: SessionFactory, card: ModelCard, path: str) -> int:
    with transaction(factory) as session:
        existing = session.scalar(select(ModelVersion).where(ModelVersion.version == card.version))
        if existing is not None:
            return existing.id
        any_active = session.scalar(select(ModelVersion.id).where(ModelVersion.is_active))
        row = ModelVersion(version=card.version, sha256=card.sha256, path=path,
                           card=card.model_dump(), status=ModelStatus.CANDIDATE)
        session.add(row)
        session.flush()
        if any_active is None:
            _activate(session, row)
        return row.id


def add_candidate(factory: SessionFactory, card: ModelCard, path: str, parent_version: str | None,
                  gate: dict[str, Any], group_id: int | None = None) -> int:
    with transaction(factory) as session:
        row = ModelVersion(version=card.version, sha256=card.sha256, path=path,
                           card=card.model_dump(), status=ModelStatus.CANDIDATE,
                           parent_version=parent_version, gate=gate, group_id=group_id)
        session.add(row)
        session.flush()
        return row.id


def _activate(session: Session, row: ModelVersion) -> None:
    session.execute(update(ModelVersion).where(ModelVersion.is_active, _scope(row.group_id))
                    .values(is_active=False, status=ModelStatus.RETIRED))
    row.is_active = True
    row.status = ModelStatus.ACTIVE
    row.activated_at = utcnow()
    session.flush()


def active_model(factory: SessionFactory, group_id: int | None = None) -> ModelRef | None:
    """The version serving ``group_id``: the group's own active one, else the laboratory-wide."""
    with factory() as session:
        row = None
        if group_id is not None:
            row = session.scalar(select(ModelVersion).where(ModelVersion.is_active,
                                                            _scope(group_id)))
        if row is None:
            row = session.scalar(select(ModelVersion).where(ModelVersion.is_active,
                                                            _scope(None)))
        return _ref(row) if row else None


def promote(factory: SessionFactory, version: str, by: Member | None = None) -> ModelRef:
    """Make ``version`` active in its scope. ``by``: the admin asking, who must administer that
    scope (``Member.administers``); None for the service's own gate."""
    with transaction(factory) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.version == version)
                             .with_for_update())
        if row is None or (by is not None and not by.administers(row.group_id)
                           and row.group_id is not None):
            # Another laboratory's version is not named to an admin who cannot see it.
            raise RegistryError(f"there is no model version {_shown(version)} for your "
                                "laboratory")
        if by is not None and not by.administers(row.group_id):
            raise RegistryError(f"{version} serves every laboratory: only a laboratory-wide "
                                "owner can promote it")
        if row.is_active:
            raise RegistryError(f"{version} is already active")
        if row.status is ModelStatus.DISCARDED:
            raise RegistryError(f"{version} was discarded")
        _activate(session, row)
        return _ref(row)


def discard(factory: SessionFactory, version: str, by: Member) -> ModelRef:
    """Turn down a candidate that never served: it stays listed, and cannot be promoted."""
    with transaction(factory) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.version == version)
                             .with_for_update())
        if row is None or not by.administers(row.group_id):
            raise RegistryError(f"there is no model version {_shown(version)} you can discard")
        if row.status is not ModelStatus.CANDIDATE:
            raise RegistryError(f"{version} is {row.status.value.replace('_', ' ')}, not a "
                                "candidate")
        row.status = ModelStatus.DISCARDED
        session.flush()
        return _ref(row)


def rollback(factory: SessionFactory, group_id: int | None = None,
             by: Member | None = None) -> tuple[ModelRef, ModelRef]:
    """Take the version serving ``group_id`` out of service; the one active before it in the
    same scope comes back. A group whose first own version is rolled back returns to the
    laboratory-wide model. Returns (now serving, removed). ``by``: the admin asking, who must
    administer the scope rolled back (a group without its own version rolls back everyone's)."""
    with transaction(factory) as session:
        current = None
        if group_id is not None:
            current = session.scalar(select(ModelVersion).where(
                ModelVersion.is_active, _scope(group_id)).with_for_update())
        scope = group_id if current is not None else None
        if by is not None and not by.administers(scope):
            raise RegistryError("your laboratory has no version of its own to roll back, and "
                                "only a laboratory-wide owner can roll back the one serving "
                                "every laboratory")
        if current is None:
            current = session.scalar(select(ModelVersion).where(
                ModelVersion.is_active, _scope(None)).with_for_update())
        previous = session.scalar(
            select(ModelVersion)
            .where(ModelVersion.activated_at.is_not(None), ModelVersion.is_active.is_(False),
                   ModelVersion.status != ModelStatus.ROLLED_BACK, _scope(scope))
            .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc()).limit(1)
        )
        if current is None or (previous is None and scope is None):
            raise RegistryError("there is no earlier active version to go back to")
        if previous is not None:
            _activate(session, previous)
        current.is_active = False
        current.status = ModelStatus.ROLLED_BACK
        session.flush()
        serving = previous or session.scalar(select(ModelVersion).where(
            ModelVersion.is_active, _scope(None)))
        if serving is None:
            raise RegistryError("no laboratory-wide version is active")
        return _ref(serving), _ref(current)


def list_models(factory: SessionFactory, limit: int = 10,
                for_member: Member | None = None) -> list[ModelEntry]:
    """The latest versions; for an admin who is not an owner, the laboratory-wide ones and
    their own laboratory's only."""
    query = select(ModelVersion, Group.name).outerjoin(Group, Group.id == ModelVersion.group_id)
    if for_member is not None and not for_member.is_owner:
        query = query.where(ModelVersion.group_id.is_(None)
                            | (ModelVersion.group_id == for_member.group_id))
    with factory() as session:
        rows = session.execute(query.order_by(ModelVersion.created_at.desc(),
                                              ModelVersion.id.desc()).limit(limit)).all()
        entries = []
        for row, group in rows:
            test = (row.card.get("metrics") or {}).get("test") or {}
            entries.append(ModelEntry(_ref(row), row.status, row.created_at,
                                      test.get("accuracy"), test.get("macro_f1"),
                                      row.parent_version, row.gate, group,
                                      _sources(row.card)))
        return entries


def _sources(card: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"{s.get('name')} ({s.get('licence')})" for s in card.get("sources") or [])


@dataclass(frozen=True)
class ScreenCard:
    """The model that screens every cell for blasts, as /models names it."""

    version: str
    sources: tuple[str, ...]


def screen_card(weights: Path) -> ScreenCard:
    """Read from the JSON card beside ``weights`` (not through the model code, which needs
    torch: the bot does not load it)."""
    card = json.loads(weights.with_suffix(".json").read_text())
    return ScreenCard(str(card.get("version")), _sources(card))


def model_card(factory: SessionFactory, model_id: int) -> dict[str, Any]:
    """The card registered with a version (what a host without its file writes beside it)."""
    with factory() as session:
        card = session.scalar(select(ModelVersion.card).where(ModelVersion.id == model_id))
    if card is None:
        raise RegistryError(f"there is no model version with id {model_id}")
    return dict(card)
