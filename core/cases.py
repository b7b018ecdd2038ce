"""Cases: a laboratory's patient samples, their photos and their summed differential."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from core.access import AccessDenied, Member
from core.db.models import Case, CellResult, Group, LabelReview, Submission, User
from core.db.session import SessionFactory, transaction
from core.enums import SubmissionStatus
from vision.field.results import CLASSIFIED_KINDS
from vision.labels import NOT_RECOGNISED

# A laboratory's own sample reference: letters, digits and . _ - / (never a patient's name).
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


class InvalidReference(ValueError):
    pass


def check_reference(reference: str) -> str:
    reference = reference.strip()
    if not REFERENCE.match(reference):
        raise InvalidReference(reference)
    return reference


def automatic_reference(user: User, when: datetime) -> str:
    return f"auto-{when:%Y%m%d}-{user.telegram_id}"


def case_for_upload(session: Session, user: User, when: datetime) -> Case | None:
    """The case a new photo joins: the user's current case, else today's automatic case."""
    if user.group_id is None:
        return None
    if user.current_case_id is not None:
        case = session.get(Case, user.current_case_id)
        if case is not None and case.group_id == user.group_id:
            return case
    return _get_or_create(session, user.group_id, automatic_reference(user, when), user.id,
                          automatic=True)


def _get_or_create(session: Session, group_id: int, reference: str, owner_id: int,
                   automatic: bool = False) -> Case:
    query = select(Case).where(Case.group_id == group_id, Case.reference == reference)
    case = session.scalar(query)
    if case is not None:
        return case
    try:
        # Photos sent together reach here concurrently; the savepoint lets the loser of the
        # race take the winner's row instead of failing the whole upload.
        with session.begin_nested():
            case = Case(owner_id=owner_id, group_id=group_id, reference=reference,
                        automatic=automatic)
            session.add(case)
    except IntegrityError:
        case = session.scalar(query)
        assert case is not None
    return case


def _counts(cells: list[CellResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cell in cells:
        label = cell.final_label
        if cell.kind in CLASSIFIED_KINDS and label and label != NOT_RECOGNISED:
            counts[label] = counts.get(label, 0) + 1
    return counts


@dataclass(frozen=True)
class Correction:
    photo_number: int
    cell_number: int
    previous_label: str | None
    label: str
    reviewer: str
    at: datetime


@dataclass(frozen=True)
class Photo:
    number: int
    submission_id: int
    received_at: datetime
    status: SubmissionStatus
    mode: str | None
    counts: dict[str, int]
    rbc_count: int | None
    platelet_count: int | None
    flagged: int  # cells marked for review
    reviewed: int  # cells with an expert decision
    model_version: str | None
    red_cell_model: str | None
    screen_model: str | None
    image_sha256: str | None
    annotated_sha256: str | None
    error: str | None
    # Why the model flagged the cells still awaiting review: reason code -> cells.
    flag_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rejection(self) -> str:
        """Why the photo was not analysed, in the first sentence of the reply's reason."""
        text = " ".join((self.error or "rejected").split())
        end = text.find(". ")
        return text if end < 0 else text[:end + 1]


@dataclass(frozen=True)
class CaseDetail:
    case_id: int
    reference: str
    group: str
    owner: str
    created_at: datetime
    automatic: bool
    photos: list[Photo]
    corrections: list[Correction] = field(default_factory=list)
    laboratory: str = ""  # as the report's header names it
    wbc_per_nl: float | None = None  # the analyser's white-cell count, x 10^9/L
    # Who confirmed or corrected cells of the case, by name, in the order they first did.
    reviewers: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for photo in self.photos:
            for label, count in photo.counts.items():
                total[label] = total.get(label, 0) + count
        return total

    @property
    def rbc_total(self) -> int:
        return sum(p.rbc_count or 0 for p in self.photos)

    @property
    def platelet_total(self) -> int | None:
        """The photos' platelets, where every analysed photo has a count; None: not estimated
        (``vision.field.results.Analysis.platelet_count``)."""
        counts = [p.platelet_count for p in self.photos if p.status is SubmissionStatus.DONE]
        if not counts or any(count is None for count in counts):
            return None
        return sum(count or 0 for count in counts)

    @property
    def flagged(self) -> int:
        return sum(p.flagged for p in self.photos)

    @property
    def flag_reasons(self) -> dict[str, int]:
        """Reason code -> the case's cells awaiting review that carry it."""
        return dict(sum((Counter(p.flag_reasons) for p in self.photos), Counter()))

    @property
    def model_versions(self) -> list[str]:
        return sorted({p.model_version for p in self.photos if p.model_version})

    @property
    def models_used(self) -> list[str]:
        """Every model behind the case's answers, as a signed report names them: the answering
        versions, a blast screen's and the red-cell finder's."""
        screens = sorted({p.screen_model for p in self.photos if p.screen_model})
        red = sorted({p.red_cell_model for p in self.photos if p.red_cell_model})
        return [*self.model_versions, *(f"blast screen {s}" for s in screens),
                *([f"red cells {' / '.join(red)}"] if red else [])]


@dataclass(frozen=True)
class CaseLine:
    case_id: int
    reference: str
    created_at: datetime
    photos: int
    white_cells: int
    corrections: int = 0


@dataclass(frozen=True)
class HistoryPage:
    lines: list[CaseLine]
    page: int
    pages: int


def _approved(member: Member) -> int:
    if not member.approved or member.group_id is None:
        raise AccessDenied("not an approved member of a group")
    return member.group_id


def open_case(factory: SessionFactory, member: Member, reference: str) -> tuple[CaseDetail, bool]:
    """Open (or switch to) the case; returns its detail and whether it was created."""
    group_id = _approved(member)
    reference = check_reference(reference)
    with transaction(factory) as session:
        created = session.scalar(select(Case.id).where(
            Case.group_id == group_id, Case.reference == reference)) is None
        case = _get_or_create(session, group_id, reference, member.user_id)
        user = session.get(User, member.user_id)
        assert user is not None
        user.current_case_id = case.id
        case_id = case.id
    detail = case_detail(factory, member, case_id)
    assert detail is not None
    return detail, created


def find_case(factory: SessionFactory, member: Member, reference: str) -> int | None:
    group_id = _approved(member)
    with factory() as session:
        return session.scalar(select(Case.id).where(Case.group_id == group_id,
                                                    Case.reference == reference.strip()))


def case_detail(factory: SessionFactory, member: Member, case_id: int) -> CaseDetail | None:
    """The case with everything in it, or None when it is not in the member's group."""
    group_id = _approved(member)
    with factory() as session:
        case = session.scalar(
            select(Case).where(Case.id == case_id, Case.group_id == group_id).options(
                selectinload(Case.submissions).selectinload(Submission.cells)
                .selectinload(CellResult.reviews).selectinload(LabelReview.reviewer),
                selectinload(Case.submissions).selectinload(Submission.model_version),
                selectinload(Case.owner), selectinload(Case.group),
            )
        )
        if case is None:
            return None
        photos, corrections, reviewers = [], [], []
        for number, submission in enumerate(case.submissions, start=1):
            cells = list(submission.cells)
            photos.append(Photo(
                number=number, submission_id=submission.id, received_at=submission.created_at,
                status=submission.status, mode=submission.mode, counts=_counts(cells),
                rbc_count=submission.rbc_count, platelet_count=submission.platelet_count,
                flagged=sum(c.review and c.expert_label is None for c in cells),
                reviewed=sum(c.expert_label is not None for c in cells),
                model_version=submission.model_version.version
                if submission.model_version else None,
                red_cell_model=submission.red_cell_model,
                screen_model=submission.screen_model,
                image_sha256=submission.sha256, annotated_sha256=submission.annotated_sha256,
                error=submission.error, flag_reasons=_flag_reasons(cells),
            ))
            for cell in cells:
                for review in cell.reviews:
                    if (name := person_name(review.reviewer)) not in reviewers:
                        reviewers.append(name)
                    if review.is_correction:
                        corrections.append(Correction(
                            number, cell.index + 1, review.previous_label, review.label,
                            _handle(review.reviewer), review.created_at))
        return CaseDetail(
            case_id=case.id, reference=case.reference, group=case.group.name,
            owner=_handle(case.owner),
            created_at=case.created_at, automatic=case.automatic, photos=photos,
            corrections=corrections,
            laboratory=case.group.laboratory_name or case.group.name,
            wbc_per_nl=case.wbc_per_nl, reviewers=reviewers,
        )


def _flag_reasons(cells: list[CellResult]) -> dict[str, int]:
    """Reason code -> flagged cells still awaiting review that carry it."""
    reasons: dict[str, int] = {}
    for cell in cells:
        if cell.review and cell.expert_label is None:
            for reason in cell.review_reasons or ():
                reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def person_name(user: User) -> str:
    """A person as a report names them: their full name, with their handle where known."""
    if user.full_name:
        return f"{user.full_name} ({_handle(user)})" if user.username else user.full_name
    return _handle(user)


class InvalidCount(ValueError):
    pass


# A white-cell count outside this (x 10^9/L) is a typing slip, not a patient.
WBC_RANGE = (0.1, 500.0)


def set_wbc(factory: SessionFactory, member: Member, text: str) -> CaseDetail:
    """Record the analyser's white-cell count (x 10^9/L, "7.2" or "7,2") on the member's
    current case, for the report's absolute counts."""
    group_id = _approved(member)
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError as exc:
        raise InvalidCount(text) from exc
    if not WBC_RANGE[0] <= value <= WBC_RANGE[1]:
        raise InvalidCount(text)
    with transaction(factory) as session:
        user = session.get(User, member.user_id)
        case = session.get(Case, user.current_case_id) if user and user.current_case_id else None
        if case is None or case.group_id != group_id:
            raise LookupError("no open case")
        case.wbc_per_nl = value
        case_id = case.id
    detail = case_detail(factory, member, case_id)
    assert detail is not None
    return detail


def set_laboratory_name(factory: SessionFactory, admin: Member, name: str) -> str:
    """The name the admin's laboratory's reports carry in their header."""
    if not admin.is_admin or admin.group_id is None:
        raise AccessDenied("only a laboratory's admin names it")
    name = " ".join(name.split())[:128]
    if not name:
        raise ValueError("an empty name")
    with transaction(factory) as session:
        group = session.get(Group, admin.group_id)
        assert group is not None
        group.laboratory_name = name
    return name


def _handle(user: User) -> str:
    return f"@{user.username}" if user.username else str(user.telegram_id)


def history(factory: SessionFactory, member: Member, page: int = 0,
            per_page: int = 5) -> HistoryPage:
    """The group's cases, most recently active first."""
    group_id = _approved(member)
    with factory() as session:
        total = session.scalar(select(func.count(Case.id)).where(Case.group_id == group_id)) or 0
        pages = max(1, -(-total // per_page))
        page = min(max(page, 0), pages - 1)
        last_activity = func.coalesce(func.max(Submission.created_at), Case.created_at)
        rows = session.execute(
            select(Case.id, Case.reference, Case.created_at, func.count(Submission.id))
            .outerjoin(Submission, Submission.case_id == Case.id)
            .where(Case.group_id == group_id)
            .group_by(Case.id, Case.reference, Case.created_at)
            .order_by(last_activity.desc(), Case.id.desc())
            .offset(page * per_page).limit(per_page)
        ).all()
        white = dict(session.execute(
            select(Submission.case_id, func.count(CellResult.id))
            .join(CellResult, CellResult.submission_id == Submission.id)
            .where(Submission.case_id.in_([r[0] for r in rows]),
                   CellResult.kind.in_(CLASSIFIED_KINDS),
                   func.coalesce(CellResult.expert_label, CellResult.label) != NOT_RECOGNISED)
            .group_by(Submission.case_id)
        ).all())
        corrected = dict(session.execute(
            select(Submission.case_id, func.count(LabelReview.id))
            .join(CellResult, CellResult.submission_id == Submission.id)
            .join(LabelReview, LabelReview.cell_id == CellResult.id)
            .where(Submission.case_id.in_([r[0] for r in rows]),
                   LabelReview.label != func.coalesce(LabelReview.previous_label, ""))
            .group_by(Submission.case_id)
        ).all())
    lines = [CaseLine(case_id, reference, created, photos, white.get(case_id, 0),
                      corrected.get(case_id, 0))
             for case_id, reference, created, photos in rows]
    return HistoryPage(lines, page, pages)
