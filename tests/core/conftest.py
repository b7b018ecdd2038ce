"""Core fixtures: a migrated database with a registered model, and members of two laboratories."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.access import Member, Sender, assign_group, decide, register
from core.db import migrate
from core.db.session import make_engine, make_session_factory
from core.enums import Role
from core.registry import register_model
from core.submissions import Received, record_submission, start_processing, store_results
from vision.field.results import Analysis, Cell
from vision.model.artifact import ModelCard
from vision.model.classifier import LabelScore

ADMIN_ID = 1


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    migrate.upgrade(database_url)
    factory = make_session_factory(make_engine(database_url))
    yield factory
    factory.kw["bind"].dispose()


@dataclass
class Lab:
    """A populated laboratory database: an admin, members by role, a model."""

    sessions: sessionmaker[Session]
    admin: Member
    model_id: int
    next_message: int = 100

    def member(self, telegram_id: int, role: Role = Role.USER, group: str | None = None) -> Member:
        registration = register(self.sessions, Sender(telegram_id, f"u{telegram_id}", None), [])
        member = decide(self.sessions, self.admin, registration.member.user_id, role)
        if group is not None:
            member = assign_group(self.sessions, self.admin, telegram_id, group)
        return member

    def photo(self, member: Member, labels: list[str], mode: str = "cell",
              confidence: float = 0.9, model_id: int | None = None,
              reasons: tuple[str, ...] = (), screen_model: str | None = None,
              sha256: str = "a" * 64) -> int:
        """A classified submission by ``member`` with one white cell per label, each flagged
        for ``reasons`` if any."""
        self.next_message += 1
        outcome = record_submission(
            self.sessions, Sender(member.telegram_id, f"u{member.telegram_id}", None),
            Received(member.telegram_id, self.next_message, "photo", None, None),
            reply_message_id=None, sha256=sha256)
        start_processing(self.sessions, outcome.submission_id)
        cells = [Cell("wbc" if mode == "field" else "cell", (10 * i, 0, 10 * i + 9, 9), False,
                      label, confidence, (LabelScore(label, confidence),), bool(reasons),
                      reasons=reasons)
                 for i, label in enumerate(labels)]
        if mode == "field":
            cells.append(Cell("rbc", (0, 50, 9, 59), False))
        analysis = Analysis(mode, 100, 100, cells, [], rbc_count=1 if mode == "field" else 0,
                            platelet_count=None, quality=None, model="m1",
                            red_cell_model="colour-rule" if mode == "field" else None,
                            screen_model=screen_model)
        store_results(self.sessions, outcome.submission_id, analysis, model_id or self.model_id)
        return outcome.submission_id


@pytest.fixture
def lab(sessions: sessionmaker[Session]) -> Lab:
    admin = register(sessions, Sender(ADMIN_ID, "boss", "Lab Admin"), [ADMIN_ID]).member
    model_id = register_model(sessions, ModelCard(version="m1", classes=["a"], sha256="0" * 64),
                              "models/m1.safetensors")
    return Lab(sessions, admin, model_id)
