"""Photos past the retention period go; results, open cases and experts' cells stay."""

from datetime import timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from core.cases import open_case
from core.db.models import CellResult, Submission, utcnow
from core.retention import purge_images
from core.storage import FolderBlobs, ImageStore
from tests.core.conftest import Lab

PERIOD = timedelta(days=30)


def photo(lab: Lab, store: ImageStore, member_id: int, colour: str, age_days: int) -> int:
    """A classified photo by ``member_id`` (their own case), stored, ``age_days`` old."""
    submission_id = lab.photo(lab.member(member_id), ["neutrophil"])
    sha = store.put(Image.new("RGB", (40, 30), colour)).sha256
    with lab.sessions.begin() as session:
        session.execute(update(Submission).where(Submission.id == submission_id).values(
            sha256=sha, created_at=utcnow() - timedelta(days=age_days)))
    return submission_id


def row(lab: Lab, submission_id: int) -> Submission:
    with lab.sessions() as session:
        found = session.get(Submission, submission_id)
        assert found is not None
        return found


def test_old_photos_go_and_their_results_stay(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    old = photo(lab, store, 40, "red", age_days=90)
    recent = photo(lab, store, 41, "blue", age_days=1)
    report = purge_images(lab.sessions, blobs, PERIOD, utcnow())
    assert (report.photos, report.files_deleted) == (1, 1)
    assert row(lab, old).image_purged_at is not None and not store.exists(row(lab, old).sha256)
    assert row(lab, recent).image_purged_at is None and store.exists(row(lab, recent).sha256)
    with lab.sessions() as session:  # the differential is still there
        assert session.scalars(select(CellResult.label).where(
            CellResult.submission_id == old)).all() == ["neutrophil"]
    assert purge_images(lab.sessions, blobs, PERIOD, utcnow()).photos == 0  # nothing left


def test_a_photo_of_an_open_case_is_kept_however_old(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    member = lab.member(42)
    open_case(lab.sessions, member, "H-OPEN")  # the member's current case: open
    kept = photo(lab, store, 42, "green", age_days=400)
    old_in_active_case = photo(lab, store, 43, "white", age_days=90)
    photo(lab, store, 43, "black", age_days=2)  # the same case had a photo this week
    report = purge_images(lab.sessions, blobs, PERIOD, utcnow())
    assert report.photos == 0 and report.kept_open_case == 2
    assert store.exists(row(lab, kept).sha256)
    assert store.exists(row(lab, old_in_active_case).sha256)


def test_expert_labelled_cells_keep_their_photo(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    reviewed = photo(lab, store, 44, "yellow", age_days=90)
    with lab.sessions.begin() as session:
        session.execute(update(CellResult).where(CellResult.submission_id == reviewed)
                        .values(expert_label="monocyte"))
    report = purge_images(lab.sessions, blobs, PERIOD, utcnow())
    assert report.photos == 0 and report.kept_expert_labels == 1
    assert store.exists(row(lab, reviewed).sha256)


def test_a_file_another_submission_still_shows_is_kept(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    old = photo(lab, store, 45, "purple", age_days=90)
    again = photo(lab, store, 46, "purple", age_days=1)  # the same photo, sent again lately
    assert row(lab, old).sha256 == row(lab, again).sha256
    report = purge_images(lab.sessions, blobs, PERIOD, utcnow())
    assert (report.photos, report.files_deleted) == (1, 0)
    assert store.exists(row(lab, again).sha256)


def test_a_dry_run_deletes_nothing(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    old = photo(lab, store, 47, "orange", age_days=90)
    report = purge_images(lab.sessions, blobs, PERIOD, utcnow(), dry_run=True)
    assert (report.photos, report.files_deleted) == (1, 1)
    assert row(lab, old).image_purged_at is None and store.exists(row(lab, old).sha256)


def test_a_photo_sent_again_while_the_purge_runs_keeps_its_file(lab: Lab, tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    old = photo(lab, store, 48, "teal", age_days=90)
    sha = row(lab, old).sha256
    again = lab.photo(lab.member(49), ["neutrophil"])
    resent: list[int] = []

    @event.listens_for(Session, "after_commit")
    def send_it_again(_session: Session) -> None:
        # Right after the purge's transaction marked the old row: the same photo arrives.
        if not resent:
            resent.append(0)
            with lab.sessions.begin() as session:
                session.execute(update(Submission).where(Submission.id == again)
                                .values(sha256=sha))

    try:
        report = purge_images(lab.sessions, blobs, PERIOD, utcnow())
    finally:
        event.remove(Session, "after_commit", send_it_again)
    assert resent and report.photos == 1 and report.files_deleted == 0
    assert store.exists(sha)  # the new row's photo is still there
