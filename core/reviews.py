"""Expert review: reviewers confirm a result or correct a cell's label; corrections train."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.access import AccessDenied, Member
from core.agreement import ReviewedAnswer
from core.db.models import Case, CellResult, LabelReview, ModelVersion, Submission
from core.db.session import SessionFactory, transaction
from core.enums import SubmissionStatus
from vision.field.results import CLASSIFIED_KINDS, flagged_by_model
from vision.labels import ALL_CLASSES, EXPERT_LABELS


@dataclass(frozen=True)
class ReviewableCell:
    cell_id: int
    number: int
    label: str | None
    expert_label: str | None
    confidence: float | None


@dataclass(frozen=True)
class Reviewed:
    submission_id: int
    cell_number: int
    previous_label: str | None
    label: str


def _submission_in_group(session: Session, member: Member, submission_id: int) -> Submission:
    # The group check happens here, server-side: callback data is chosen by the client.
    submission = session.scalar(
        select(Submission).join(Case, Case.id == Submission.case_id)
        .where(Submission.id == submission_id, Case.group_id == member.group_id)
    )
    if submission is None or not member.approved:
        raise AccessDenied("no such result in your laboratory")
    return submission


class PhotoGone(Exception):
    """The result's photo was deleted after the retention period: a label given now could
    never be learnt from (the cell cannot be cut out again), so none is stored."""


def _photo_kept(submission: Submission) -> None:
    if submission.image_purged_at is not None:
        raise PhotoGone(f"submission {submission.id}'s photo was purged")


def _reviewer(member: Member) -> None:
    if not member.can_review:
        raise AccessDenied("only reviewers may confirm or correct labels")


def reviewable_cells(factory: SessionFactory, member: Member,
                     submission_id: int) -> list[ReviewableCell]:
    _reviewer(member)
    with factory() as session:
        submission = _submission_in_group(session, member, submission_id)
        return [ReviewableCell(c.id, number, c.label, c.expert_label, c.confidence)
                for number, c in enumerate(_classified(submission), start=1)]


def reviewable_cell(factory: SessionFactory, member: Member, cell_id: int) -> ReviewableCell:
    _reviewer(member)
    with factory() as session:
        cell = session.get(CellResult, cell_id)
        if cell is None:
            raise AccessDenied("no such cell in your laboratory")
        submission = _submission_in_group(session, member, cell.submission_id)
        for number, candidate in enumerate(_classified(submission), start=1):
            if candidate.id == cell_id:
                return ReviewableCell(cell_id, number, cell.label, cell.expert_label,
                                      cell.confidence)
    raise AccessDenied("that cell has no label to correct")


def _classified(submission: Submission) -> list[CellResult]:
    return [c for c in submission.cells if c.kind in CLASSIFIED_KINDS and c.label is not None]


def confirm(factory: SessionFactory, member: Member, submission_id: int) -> int:
    """The reviewer agrees with every label of the result; returns how many were confirmed."""
    _reviewer(member)
    with transaction(factory) as session:
        submission = _submission_in_group(session, member, submission_id)
        if submission.status is not SubmissionStatus.DONE:
            raise AccessDenied("only finished results can be confirmed")
        _photo_kept(submission)
        confirmed = 0
        for cell in _classified(submission):
            if cell.expert_label is None:
                label = cell.label
                assert label is not None
                session.add(LabelReview(cell_id=cell.id, reviewer_id=member.user_id,
                                        previous_label=label, label=label))
                cell.expert_label = label
                confirmed += 1
        return confirmed


def correct(factory: SessionFactory, member: Member, cell_id: int, label: str) -> Reviewed:
    """Give a cell the expert's label, keeping who changed it from what, and when."""
    _reviewer(member)
    if label not in EXPERT_LABELS:
        raise ValueError(f"unknown class {label!r}")
    with transaction(factory) as session:
        cell = session.get(CellResult, cell_id)
        if cell is None or cell.kind not in CLASSIFIED_KINDS:
            raise AccessDenied("no such cell in your laboratory")
        submission = _submission_in_group(session, member, cell.submission_id)
        _photo_kept(submission)
        previous = cell.final_label
        session.add(LabelReview(cell_id=cell.id, reviewer_id=member.user_id,
                                previous_label=previous, label=label))
        cell.expert_label = label
        number = [c.id for c in _classified(submission)].index(cell.id) + 1
        return Reviewed(submission.id, number, previous, label)


@dataclass(frozen=True)
class ExpertExample:
    """A reviewed cell as training data: where it is and what an expert says it is."""

    image_sha256: str
    box: tuple[int, int, int, int]
    whole_image: bool  # a close-up is the cell itself; a field cell is cropped around its box
    label: str


def expert_examples(factory: SessionFactory, group_id: int | None = None) -> list[ExpertExample]:
    """Every expert-labelled cell (confirmed or corrected) whose photo is still kept, oldest
    first; with ``group_id``, only those of that laboratory's cases.

    A photo sent twice is analysed twice, to the same cells: each cell is one example, at its
    first place, with the expert's latest label. Twice, it would weigh double in learning, and
    adaptation could learn it and also hold it out to judge itself by (``split_held_out``)."""
    query = (select(CellResult, Submission.sha256, Submission.mode)
             .join(Submission, Submission.id == CellResult.submission_id)
             .where(CellResult.expert_label.is_not(None), Submission.sha256.is_not(None),
                    Submission.image_purged_at.is_(None))
             .order_by(CellResult.id))
    if group_id is not None:
        query = query.join(Case, Case.id == Submission.case_id).where(Case.group_id == group_id)
    with factory() as session:
        rows = session.execute(query).all()
    examples: dict[tuple[str, tuple[int, int, int, int]], ExpertExample] = {}
    for cell, sha, mode in rows:
        label = cell.expert_label
        if sha is None or label is None or label not in ALL_CLASSES:
            continue
        box = (cell.box_x0, cell.box_y0, cell.box_x1, cell.box_y1)
        # Assigning to an existing key keeps its place in the dict's (oldest first) order.
        examples[sha, box] = ExpertExample(sha, box, mode != "field", label)
    return list(examples.values())


def reviewed_answers(factory: SessionFactory, group_id: int,
                     version_id: int | None = None) -> list[ReviewedAnswer]:
    """Every answer of the bot in this laboratory that one of its experts reviewed (with
    ``version_id``, of that model version only), purged photos included (the review happened;
    only the picture is gone), oldest review first."""
    query = (select(CellResult, ModelVersion.version)
             .join(Submission, Submission.id == CellResult.submission_id)
             .join(Case, Case.id == Submission.case_id)
             .join(ModelVersion, ModelVersion.id == CellResult.model_version_id)
             .where(Case.group_id == group_id, CellResult.expert_label.is_not(None),
                    CellResult.label.is_not(None), CellResult.kind.in_(CLASSIFIED_KINDS))
             .options(selectinload(CellResult.reviews)))
    if version_id is not None:
        query = query.where(CellResult.model_version_id == version_id)
    with factory() as session:
        answers = [
            ReviewedAnswer(label, expert, cell.confidence or 0.0,
                           flagged_by_model(cell.review, cell.review_reasons), version,
                           min(r.created_at for r in cell.reviews))
            for cell, version in session.execute(query).all()
            if (label := cell.label) is not None and (expert := cell.expert_label) is not None
            and cell.reviews
        ]
    return sorted(answers, key=lambda a: a.reviewed_at)

