"""The retention policy: photos older than the period are deleted; their results stay.

A photo is kept, whatever its age, while its case is open (somebody's current case, or a case
with a photo younger than the period), and while one of its cells carries an expert's label:
those cells are the training data of the next retraining and of their laboratory's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select

from core.db.models import CellResult, Submission, User
from core.db.session import SessionFactory, transaction
from core.storage.blobs import BlobStore


@dataclass(frozen=True)
class PurgeReport:
    photos: int  # submissions whose photo (and annotated picture) went
    files_deleted: int
    kept_open_case: int
    kept_expert_labels: int


def purge_images(factory: SessionFactory, blobs: BlobStore, older_than: timedelta,
                 now: datetime, dry_run: bool = False) -> PurgeReport:
    cutoff = now - older_than
    labelled = exists().where(CellResult.submission_id == Submission.id,
                              CellResult.expert_label.is_not(None))
    with transaction(factory) as session:
        open_cases = set(session.scalars(select(User.current_case_id)
                                         .where(User.current_case_id.is_not(None))))
        open_cases |= set(session.scalars(select(Submission.case_id).distinct()
                                          .where(Submission.created_at >= cutoff)))
        old = session.execute(
            select(Submission, labelled.label("labelled"))
            .where(Submission.created_at < cutoff, Submission.image_purged_at.is_(None),
                   Submission.sha256.is_not(None))
            .with_for_update(of=Submission, skip_locked=True)).all()
        kept_open = [row for row, _ in old if row.case_id in open_cases]
        kept_expert = [row for row, has_labels in old
                       if row.case_id not in open_cases and has_labels]
        going = [row for row, has_labels in old
                 if row.case_id not in open_cases and not has_labels]
        names = {sha for row in going for sha in (row.sha256, row.annotated_sha256) if sha}
        # The same photo sent twice is one file: it stays while any row still shows it.
        going_ids = [row.id for row in going]
        for column in (Submission.sha256, Submission.annotated_sha256):
            names -= set(session.scalars(select(column).where(
                column.in_(names), Submission.image_purged_at.is_(None),
                Submission.id.not_in(going_ids))))
        if not dry_run:
            for row in going:
                row.image_purged_at = now
    # Files go only once the rows say so: a crash in between leaves a file no row shows,
    # never a row pointing at a file that silently vanished.
    files = len(names) if dry_run else sum(
        blobs.delete(sha) for sha in sorted(names) if not _named_again(factory, sha))
    return PurgeReport(len(going), files, len(kept_open), len(kept_expert))


def _named_again(factory: SessionFactory, sha: str) -> bool:
    """Whether a row not purged names the file now: the same photo sent again since the
    purge's transaction. Checked right before each deletion; intake stores its photo again
    after recording the row (``ensure_stored``), which closes what remains of the window."""
    with factory() as session:
        return session.scalar(select(Submission.id).where(
            (Submission.sha256 == sha) | (Submission.annotated_sha256 == sha),
            Submission.image_purged_at.is_(None)).limit(1)) is not None
