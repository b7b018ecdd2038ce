"""The schema. Alembic migrations in ``migrations/`` must match these models exactly."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.enums import JobStatus, ModelStatus, Role, SubmissionStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Group(Base):
    """A laboratory: its members see each other's cases and nobody else's."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # As its reports' header names it ("St Elsewhere Haematology"); the group name if unset.
    laboratory_name: Mapped[str | None] = mapped_column(String(128))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    full_name: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.PENDING,
                                       server_default=Role.PENDING.value)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    # No foreign key: users and cases would reference each other, and the case is only a
    # preference (a vanished case falls back to the automatic one).
    current_case_id: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)  # the admin's Telegram id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    group: Mapped[Group | None] = relationship()
    cases: Mapped[list[Case]] = relationship(back_populates="owner")


class Case(Base):
    """A patient sample, known by the laboratory's own reference (never a name)."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("group_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    reference: Mapped[str] = mapped_column(String(64))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The analyser's total white-cell count (x 10^9/L), given with /wbc: the report's absolute
    # counts are the differential's shares of it.
    wbc_per_nl: Mapped[float | None] = mapped_column(Float)

    owner: Mapped[User] = relationship(back_populates="cases")
    group: Mapped[Group] = relationship()
    submissions: Mapped[list[Submission]] = relationship(back_populates="case",
                                                         order_by="Submission.id")


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ModelStatus] = mapped_column(_enum(ModelStatus), default=ModelStatus.CANDIDATE,
                                                server_default=ModelStatus.CANDIDATE.value)
    parent_version: Mapped[str | None] = mapped_column(String(64))
    # A laboratory's own version, served to that group only; NULL: the laboratory-wide model.
    # One version is active per group, and one laboratory-wide.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Blob(Base):
    """One content-addressed file in the shared store: a photo, an annotated picture or a
    model's weights, named by the SHA-256 of its bytes (HV_STORAGE_BACKEND=database)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Submission(Base):
    """One received image. Its row is the durable record that the user is owed an answer."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("chat_id", "message_id"),
                      Index("ix_submissions_album", "chat_id", "media_group_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(String(256))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[SubmissionStatus] = mapped_column(_enum(SubmissionStatus), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    # The red-cell finder's version (or "colour-rule") for a counted field; None otherwise.
    red_cell_model: Mapped[str | None] = mapped_column(String(64))
    # The blast screen's version where the answering model was screened (``vision.model.screen``).
    screen_model: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(8))  # "cell" (close-up) or "field"
    rbc_count: Mapped[int | None] = mapped_column(Integer)
    platelet_count: Mapped[int | None] = mapped_column(Integer)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The laboratory's trust in the answering version when it answered (``core.trust.Trust``):
    # which of its cells went unflagged depends on it.
    trust: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    annotated_sha256: Mapped[str | None] = mapped_column(String(64))
    picture_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # The outbox: failed sends are retried with backoff, a bounded number of times; a permanent
    # refusal (blocked bot, bad request) is recorded here and never retried.
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    # Set when the retention policy deleted the photo and its annotated picture; the results
    # stay (core/retention.py).
    image_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Photos sent together as one album share Telegram's media_group_id: one acknowledgement,
    # one answer for all of them.
    media_group_id: Mapped[str | None] = mapped_column(String(64))
    # Bytes of the upload as stored, counted against the storage quota until purged.
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship()
    case: Mapped[Case | None] = relationship(back_populates="submissions")
    cells: Mapped[list[CellResult]] = relationship(
        back_populates="submission", order_by="CellResult.index", cascade="all, delete-orphan"
    )
    model_version: Mapped[ModelVersion | None] = relationship()


class CellResult(Base):
    __tablename__ = "cell_results"
    __table_args__ = (UniqueConstraint("submission_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="cell", server_default="cell")
    # Label, confidence and top-3 exist for classified cells (white cells, close-ups) only;
    # red cells and platelets are located and counted.
    label: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    top3: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    at_border: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why it is flagged (``vision.field.results.REVIEW_REASONS`` keys); None before 0009.
    review_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    # The label an expert gave (equal to ``label`` when confirmed); None until reviewed.
    expert_label: Mapped[str | None] = mapped_column(String(32))
    box_x0: Mapped[int] = mapped_column(Integer)
    box_y0: Mapped[int] = mapped_column(Integer)
    box_x1: Mapped[int] = mapped_column(Integer)
    box_y1: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="cells")
    model_version: Mapped[ModelVersion] = relationship()
    reviews: Mapped[list[LabelReview]] = relationship(
        back_populates="cell", order_by="LabelReview.id", cascade="all, delete-orphan"
    )

    @property
    def final_label(self) -> str | None:
        return self.expert_label or self.label


class LabelReview(Base):
    """One expert decision on one cell: who, when, from which label to which."""

    __tablename__ = "label_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cell_results.id", ondelete="CASCADE"),
                                         index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    previous_label: Mapped[str | None] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    cell: Mapped[CellResult] = relationship(back_populates="reviews")
    reviewer: Mapped[User] = relationship()

    @property
    def is_correction(self) -> bool:
        return self.label != self.previous_label


class TrainingJob(Base):
    """A retraining requested from the chat; its progress is relayed to the admin by the bot."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED,
                                              index=True)
    stage: Mapped[str] = mapped_column(String(64), default="queued")
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The bot edits the admin's message whenever progress_seq moves past reported_seq.
    progress_seq: Mapped[int] = mapped_column(Integer, default=0)
    reported_seq: Mapped[int] = mapped_column(Integer, default=0)
    candidate_version: Mapped[str | None] = mapped_column(String(64))
    # An adaptation to this group's expert cells; NULL: a laboratory-wide retraining.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Moved on every progress report: a running job whose heartbeat stops has lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Privileged actions and refusals, kept for the laboratory's records."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
