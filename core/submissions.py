"""The life of a submission in the database: received -> classified -> delivered.

Functions here are the only writers of submission state, shared by the bot and the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from core.access import Sender, ensure_user
from core.cases import case_for_upload
from core.db.models import CellResult, Submission, utcnow
from core.db.notify import announce_result
from core.db.session import SessionFactory, transaction
from core.enums import FINISHED_STATUSES, SubmissionStatus
from core.trust import Trust
from vision.field.results import Analysis


@dataclass(frozen=True)
class Received:
    chat_id: int
    message_id: int
    source: str  # "photo" or "document"
    file_unique_id: str | None
    file_name: str | None
    media_group_id: str | None = None  # set for the photos of an album


@dataclass(frozen=True)
class RecordOutcome:
    submission_id: int
    created: bool  # False when Telegram delivered the same message twice


@dataclass(frozen=True)
class CellView:
    index: int
    kind: str
    label: str | None
    confidence: float | None
    top3: list[dict[str, float | str]]
    box: tuple[int, int, int, int]
    review: bool = False
    at_border: bool = False
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """Everything the bot needs to tell the user how their submission ended."""

    submission_id: int
    chat_id: int
    message_id: int
    reply_message_id: int | None
    source: str
    status: SubmissionStatus
    error: str | None
    model_version: str | None
    cells: list[CellView]
    mode: str | None = None
    red_cell_model: str | None = None
    screen_model: str | None = None
    rbc_count: int | None = None
    platelet_count: int | None = None
    annotated_sha256: str | None = None
    picture_delivered: bool = False
    media_group_id: str | None = None
    trust: Trust | None = None  # the laboratory's, in the answering version

    @property
    def classified(self) -> list[CellView]:
        return [c for c in self.cells if c.label is not None]


def record_submission(
    factory: SessionFactory, sender: Sender, received: Received, *,
    reply_message_id: int | None,
    sha256: str | None = None, width: int | None = None, height: int | None = None,
    rejection: str | None = None, stored_bytes: int | None = None,
) -> RecordOutcome:
    """Store a received image (or its rejection); idempotent per Telegram message.

    The photo joins the sender's current case, or their automatic case of the day.
    """
    try:
        with transaction(factory) as session:
            user = ensure_user(session, sender)
            case = case_for_upload(session, user, utcnow())
            submission = Submission(
                user_id=user.id,
                case_id=case.id if case else None,
                chat_id=received.chat_id,
                message_id=received.message_id,
                reply_message_id=reply_message_id,
                source=received.source,
                file_unique_id=received.file_unique_id,
                file_name=received.file_name,
                sha256=sha256,
                width=width,
                height=height,
                status=SubmissionStatus.REJECTED if rejection else SubmissionStatus.QUEUED,
                error=rejection,
                finished_at=utcnow() if rejection else None,
                media_group_id=received.media_group_id,
                stored_bytes=stored_bytes,
            )
            session.add(submission)
            session.flush()
            return RecordOutcome(submission.id, created=True)
    except IntegrityError:
        with factory() as session:
            existing = session.scalar(select(Submission.id).where(
                Submission.chat_id == received.chat_id,
                Submission.message_id == received.message_id,
            ))
        if existing is None:
            raise
        return RecordOutcome(existing, created=False)


# A photo whose analysis was started this many times without finishing (its worker crashed,
# was killed or hung) is given up: failed, its sender told once, the row kept for an admin
# (``hematovision health`` lists them), never handed to another worker again.
MAX_ATTEMPTS = 3
GAVE_UP = (f"Its analysis was started {MAX_ATTEMPTS} times and never finished (a worker "
           "stopped on it), so I stopped trying. It is kept for an administrator to look at.")


def _fail(session: Session, submission: Submission, error: str) -> None:
    submission.status = SubmissionStatus.FAILED
    submission.error = error[:2000]
    submission.finished_at = utcnow()
    announce_result(session)


def start_processing(factory: SessionFactory, submission_id: int) -> str | None:
    """Mark a submission as being processed; returns its image hash, or None if already finished
    (or given up now, after ``MAX_ATTEMPTS`` starts)."""
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id, with_for_update=True)
        if submission is None or submission.status in FINISHED_STATUSES:
            return None
        if submission.attempts >= MAX_ATTEMPTS:
            _fail(session, submission, GAVE_UP)
            return None
        submission.status = SubmissionStatus.PROCESSING
        submission.attempts += 1
        return submission.sha256


def caption_of(reference: str | None, received_at: datetime) -> str:
    """What an annotated picture carries to be told from another: its case and its time."""
    case = f"Case {reference} · " if reference else ""
    return f"{case}{received_at:%Y-%m-%d %H:%M} UTC"


def picture_caption(factory: SessionFactory, submission_id: int) -> str:
    """``caption_of`` a stored submission."""
    with factory() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            return ""
        return caption_of(submission.case.reference if submission.case is not None else None,
                          submission.created_at)


def submission_group(factory: SessionFactory, submission_id: int) -> int | None:
    """The laboratory a submission belongs to (its case's group), which picks its model."""
    with factory() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            return None
        if submission.case is not None:
            return submission.case.group_id
        return submission.user.group_id if submission.user is not None else None


def store_results(
    factory: SessionFactory, submission_id: int, analysis: Analysis, model_version_id: int,
    annotated_sha256: str | None = None, trust: Trust | None = None,
) -> bool:
    """Write all cells and finish the submission in one transaction.

    A photo that fails the quality gate is finished as rejected, with the gate's request.
    Returns False (and writes nothing) when another delivery of the task already finished it.
    """
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id, with_for_update=True)
        if submission is None or submission.status in FINISHED_STATUSES:
            return False
        # A redelivered task may find rows from an attempt that died before commit; they
        # cannot exist after a commit, but deleting first keeps the write idempotent regardless.
        session.execute(delete(CellResult).where(CellResult.submission_id == submission_id))
        for index, cell in enumerate(analysis.cells):
            x0, y0, x1, y1 = cell.box
            session.add(CellResult(
                submission_id=submission_id, index=index, kind=cell.kind, label=cell.label,
                confidence=cell.confidence,
                top3=[{"label": s.label, "confidence": s.confidence} for s in cell.top3]
                if cell.label is not None else None,
                box_x0=x0, box_y0=y0, box_x1=x1, box_y1=y1, at_border=cell.at_border,
                review=cell.review, review_reasons=list(cell.reasons) or None,
                model_version_id=model_version_id,
            ))
        quality = analysis.quality
        submission.status = SubmissionStatus.REJECTED if analysis.rejected \
            else SubmissionStatus.DONE
        submission.error = quality.message if analysis.rejected and quality else None
        submission.mode = analysis.mode
        submission.rbc_count = analysis.rbc_count
        submission.platelet_count = analysis.platelet_count
        submission.quality = quality.to_dict() if quality else None
        submission.trust = trust.to_dict() if trust else None
        submission.timings = analysis.to_dict()["timings_ms"]  # type: ignore[assignment]
        submission.annotated_sha256 = annotated_sha256
        submission.model_version_id = model_version_id
        submission.red_cell_model = analysis.red_cell_model
        submission.screen_model = analysis.screen_model
        submission.finished_at = utcnow()
        announce_result(session)
        return True


def record_failure(factory: SessionFactory, submission_id: int, error: str) -> None:
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id, with_for_update=True)
        if submission is None or submission.status in FINISHED_STATUSES:
            return
        _fail(session, submission, error)


def set_reply_message(factory: SessionFactory, submission_id: int, reply_message_id: int) -> None:
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id)
        if submission is not None:
            submission.reply_message_id = reply_message_id


# A row is recorded a moment before its acknowledgement is sent; its result waits for the
# acknowledgement to edit, unless the bot evidently died in between.
ACK_GRACE = timedelta(seconds=30)
# Telegram sends an album's photos as separate messages within a second or so; its answer waits
# this long after the last one was recorded, so a photo still on its way is not left out (the
# bot also holds back an album while one of its photos is received but not yet recorded).
ALBUM_SETTLE = timedelta(seconds=1.5)


def pending_deliveries(factory: SessionFactory, limit: int = 50) -> list[Delivery]:
    """Finished results due to be sent, oldest first. The photos of an album come all together,
    once every one of them is finished and no more are arriving (``ALBUM_SETTLE``)."""
    sibling = aliased(Submission)
    album_unsettled = exists().where(
        sibling.chat_id == Submission.chat_id, sibling.media_group_id == Submission.media_group_id,
        or_(sibling.status.not_in(FINISHED_STATUSES),
            sibling.created_at > utcnow() - ALBUM_SETTLE))
    due = (Submission.status.in_(FINISHED_STATUSES), Submission.delivered_at.is_(None),
           Submission.delivery_error.is_(None),
           or_(Submission.next_delivery_at.is_(None), Submission.next_delivery_at <= utcnow()))
    with factory() as session:
        rows = list(session.scalars(
            select(Submission)
            .where(*due,
                   or_(Submission.reply_message_id.is_not(None),
                       Submission.delivery_attempts > 0,  # tried already: no ack to wait for
                       Submission.created_at < utcnow() - ACK_GRACE),
                   or_(Submission.media_group_id.is_(None), ~album_unsettled))
            .options(selectinload(Submission.cells), selectinload(Submission.model_version))
            .order_by(Submission.id)
            .limit(limit)
        ).all())
        # An album cut by the limit is completed, so it is never answered in two parts.
        albums = {(row.chat_id, row.media_group_id) for row in rows if row.media_group_id}
        seen = {row.id for row in rows}
        for chat_id, media_group_id in albums:
            rows += [row for row in session.scalars(
                select(Submission)
                .where(*due, Submission.chat_id == chat_id,
                       Submission.media_group_id == media_group_id)
                .options(selectinload(Submission.cells), selectinload(Submission.model_version))
            ).all() if row.id not in seen]
        return [_delivery(row) for row in sorted(rows, key=lambda row: row.id)]


def stored_bytes_total(factory: SessionFactory) -> int:
    """Bytes of uploads kept in the image store (purged ones no longer count)."""
    with factory() as session:
        return int(session.scalar(select(func.coalesce(func.sum(Submission.stored_bytes), 0))
                                  .where(Submission.image_purged_at.is_(None))) or 0)


def queue_depth(factory: SessionFactory) -> int:
    """Photos waiting for a worker, all users together."""
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Submission).where(
            Submission.status == SubmissionStatus.QUEUED)) or 0


def claim_stale(factory: SessionFactory, older_than: timedelta) -> list[int]:
    """Submissions queued or processing for longer than ``older_than``, to enqueue again.

    A lost broker message or a task stuck on a dead worker would otherwise leave the user without
    an answer. Each claimed row is touched, so it is claimed again only after another period;
    the worker's idempotence makes a duplicate task harmless. A row already started
    ``MAX_ATTEMPTS`` times is given up instead.
    """
    with transaction(factory) as session:
        rows = session.scalars(select(Submission).where(
            Submission.status.in_((SubmissionStatus.QUEUED, SubmissionStatus.PROCESSING)),
            Submission.updated_at < utcnow() - older_than,
        ).with_for_update(skip_locked=True)).all()
        claimed = []
        for row in rows:
            row.updated_at = utcnow()
            if row.attempts >= MAX_ATTEMPTS:
                _fail(session, row, GAVE_UP)
            else:
                claimed.append(row.id)
        return claimed


def given_up(factory: SessionFactory, limit: int = 10) -> tuple[int, list[int]]:
    """How many submissions were given up after ``MAX_ATTEMPTS`` starts, and the latest ids."""
    condition = (Submission.status == SubmissionStatus.FAILED) & (Submission.error == GAVE_UP)
    with factory() as session:
        total = session.scalar(select(func.count()).select_from(Submission)
                               .where(condition)) or 0
        latest = session.scalars(select(Submission.id).where(condition)
                                 .order_by(Submission.id.desc()).limit(limit)).all()
    return total, list(latest)


def mark_picture_delivered(factory: SessionFactory, submission_id: int) -> None:
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id)
        if submission is not None and submission.picture_delivered_at is None:
            submission.picture_delivered_at = utcnow()


def mark_delivered(factory: SessionFactory, submission_id: int) -> None:
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id)
        if submission is not None and submission.delivered_at is None:
            submission.delivered_at = utcnow()


# A result that could not be sent is tried again after 2, 4, 8 ... seconds (at most ten
# minutes apart, or after Telegram's retry_after when longer), then given up after this many.
MAX_DELIVERY_ATTEMPTS = 12
MAX_DELIVERY_BACKOFF = timedelta(minutes=10)


def delivery_failed(factory: SessionFactory, submission_id: int, reason: str, *,
                    permanent: bool = False, retry_after: float = 0.0) -> bool:
    """Record a failed send. Returns True when the row is given up (permanent, or out of
    attempts): its reason stays in ``delivery_error`` and it is never tried again."""
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.delivered_at is not None:
            return False
        submission.delivery_attempts += 1
        if permanent or submission.delivery_attempts >= MAX_DELIVERY_ATTEMPTS:
            submission.delivery_error = reason[:1000]
            return True
        backoff = min(timedelta(seconds=2 ** submission.delivery_attempts), MAX_DELIVERY_BACKOFF)
        submission.next_delivery_at = utcnow() + max(backoff, timedelta(seconds=retry_after))
        return False


def defer_delivery(factory: SessionFactory, submission_id: int, seconds: float) -> None:
    """Telegram's flood control asked this chat to wait: not a failure, so no attempt is
    counted; the row is simply not due before then."""
    with transaction(factory) as session:
        submission = session.get(Submission, submission_id)
        if submission is not None and submission.delivered_at is None:
            submission.next_delivery_at = utcnow() + timedelta(seconds=seconds)


def move_chat(factory: SessionFactory, old_chat_id: int, new_chat_id: int) -> int:
    """A group became a supergroup: its undelivered results go to the new chat, as new
    messages (the acknowledgements to edit stayed behind in the old one)."""
    with transaction(factory) as session:
        rows = session.scalars(select(Submission).where(
            Submission.chat_id == old_chat_id, Submission.delivered_at.is_(None))).all()
        for row in rows:
            row.chat_id = new_chat_id
            row.reply_message_id = None
            row.delivery_attempts += 1
        return len(rows)


def _delivery(row: Submission) -> Delivery:
    return Delivery(
        submission_id=row.id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        reply_message_id=row.reply_message_id,
        source=row.source,
        status=row.status,
        error=row.error,
        model_version=row.model_version.version if row.model_version else None,
        cells=[
            CellView(c.index, c.kind, c.label, c.confidence, c.top3 or [],
                     (c.box_x0, c.box_y0, c.box_x1, c.box_y1), c.review, c.at_border,
                     tuple(c.review_reasons or ()))
            for c in row.cells
        ],
        mode=row.mode,
        red_cell_model=row.red_cell_model,
        screen_model=row.screen_model,
        rbc_count=row.rbc_count,
        platelet_count=row.platelet_count,
        annotated_sha256=row.annotated_sha256,
        picture_delivered=row.picture_delivered_at is not None,
        media_group_id=row.media_group_id,
        trust=Trust.from_dict(row.trust) if row.trust else None,
    )
