"""A photo becomes a stored, queued, classified, replied result: every part real.

Stand-in Bot API over HTTP, the bot and a Celery worker as separate processes, Redis as broker,
and PostgreSQL or SQLite as the database.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.enums import SubmissionStatus
from core.storage import FolderBlobs
from devkit.harness import Stack, running_stack
from devkit.standin import Fault
from tests.conftest import FIXTURES as FIXTURES_DIR
from tests.conftest import fresh_postgres_database, jpeg_bytes, pbc_fixtures
from vision.labels import display_name

FIXTURES = pbc_fixtures()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest, redis_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp(f"stack-{request.param}")
    database: contextlib.AbstractContextManager[str] = (
        fresh_postgres_database() if request.param == "postgresql"
        else contextlib.nullcontext(f"sqlite:///{root / 'hv.db'}")
    )
    with database as database_url, running_stack(root, database_url, redis_url) as running:
        yield running


def _with_gps_exif(path: Path) -> bytes:
    image = Image.open(path).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x8825] = {1: "N", 2: (41.0, 23.0, 24.0)}  # GPS position
    return jpeg_bytes(image, quality=95, exif=exif.tobytes())


def test_start_introduces_the_bot(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.send_text(user, "/start")
    [reply] = stack.standin.wait_for(user, 1)
    assert "HematoVision" in (reply.text or "")
    assert "as a file" in (reply.text or "")


def test_a_photo_is_answered_with_its_true_class(stack: Stack) -> None:
    user = stack.new_user()
    sent = stack.standin.send_photo(user, FIXTURES["eosinophil"].read_bytes())

    ack = stack.standin.wait_for(user, 1)[0]
    assert ack.method == "sendMessage" and "analysing" in (ack.text or "")
    assert ack.reply_to == sent["message_id"]
    result = stack.result_for(user)
    assert result.message_id == ack.message_id
    assert f"{display_name('eosinophil')}: " in (result.text or "")
    assert "%" in (result.text or "") and "not a diagnosis" in (result.text or "")

    [submission] = stack.delivered_submissions(user)
    assert submission.status is SubmissionStatus.DONE
    assert submission.delivered_at is not None
    assert submission.source == "photo"
    [cell] = submission.cells
    assert cell.label == "eosinophil"
    assert 0.0 < cell.confidence <= 1.0
    assert cell.top3[0]["label"] == "eosinophil"
    assert cell.model_version_id == submission.model_version_id is not None

    # The "send it as a file" tip comes with the first photo, not with every one.
    assert "Tip: sending the image as a file" in (ack.text or "")
    stack.standin.send_photo(user, FIXTURES["lymphocyte"].read_bytes())
    second = stack.standin.wait_for(user, 2, predicate=lambda a: a.method == "sendMessage")[1]
    assert second.text == "📥 Received, analysing…"


def test_a_document_keeps_full_resolution_and_loses_its_exif(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.send_document(user, _with_gps_exif(FIXTURES["neutrophil"]), "cell.jpg",
                                "image/jpeg")
    result = stack.result_for(user)
    assert f"{display_name('neutrophil')}: " in (result.text or "")

    [submission] = stack.submissions(user)
    assert submission.source == "document" and submission.file_name == "cell.jpg"
    original = Image.open(FIXTURES["neutrophil"])
    assert (submission.width, submission.height) == original.size
    stored = FolderBlobs(stack.root / "images").path_of(submission.sha256 or "")
    assert stored is not None
    with Image.open(stored) as image:
        assert len(image.getexif()) == 0
        assert b"PhoneMaker" not in stored.read_bytes()


@pytest.mark.parametrize(
    ("name", "payload", "mime", "expected"),
    [
        ("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF", "application/pdf",
         "not an image"),
        ("empty.jpg", b"", "image/jpeg", "empty"),
        ("broken.jpg", None, "image/jpeg", "damaged or incomplete"),
    ],
)
def test_bad_files_get_a_clear_message_and_are_recorded(
    stack: Stack, name: str, payload: bytes | None, mime: str, expected: str
) -> None:
    if payload is None:
        whole = FIXTURES["monocyte"].read_bytes()
        payload = whole[: len(whole) // 3]
    user = stack.new_user()
    stack.standin.send_document(user, payload, name, mime)
    result = stack.result_for(user, timeout=30)
    assert expected in (result.text or "")
    # The refusal is the one answer: never "analysing…" first.
    assert stack.standin.wait_for(user, 0, 0) == [result]
    [submission] = stack.delivered_submissions(user)
    assert submission.status is SubmissionStatus.REJECTED
    assert submission.error and submission.delivered_at is not None
    assert stack.children["bot"].process.poll() is None  # still running


def test_an_image_over_the_size_limit_is_refused_without_download(stack: Stack) -> None:
    user = stack.new_user()
    big = jpeg_bytes(Image.new("RGB", (64, 64)))
    stack.standin.send_document(user, big, "huge.tif", "image/tiff",
                                declared_size=25_000_000)
    result = stack.result_for(user, timeout=30)
    assert "25.0 MB" in (result.text or "") and "up to 20 MB" in (result.text or "")
    [submission] = stack.delivered_submissions(user)
    assert submission.status is SubmissionStatus.REJECTED


def test_text_that_is_not_a_command_gets_guidance(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.send_text(user, "hello, what do I do?")
    [reply] = stack.standin.wait_for(user, 1)
    assert "photo" in (reply.text or "")


def test_a_result_finished_while_the_bot_is_down_is_delivered_once_on_restart(
    stack: Stack,
) -> None:
    user = stack.new_user()
    stack.stop("worker")
    stack.standin.send_photo(user, FIXTURES["lymphocyte"].read_bytes())
    stack.standin.wait_for(user, 1)  # acknowledged and queued
    deadline = time.monotonic() + 30
    while not stack.submissions(user) and time.monotonic() < deadline:
        time.sleep(0.1)
    stack.stop("bot")

    stack.start_worker()
    deadline = time.monotonic() + 90
    while stack.submissions(user)[0].status is not SubmissionStatus.DONE:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.2)
    assert not [a for a in stack.standin.api.state.actions
                if a.chat_id == user and a.method == "editMessageText"]

    stack.start_bot()
    result = stack.result_for(user)
    assert f"{display_name('lymphocyte')}: " in (result.text or "")
    time.sleep(1.0)  # give a duplicate every chance to appear
    edits = [a for a in stack.standin.api.state.actions if a.chat_id == user
             and a.method in ("editMessageText", "sendMessage")]
    assert len(edits) == 2  # the acknowledgement and exactly one result
    assert stack.delivered_submissions(user)[0].delivered_at is not None




def test_a_field_photo_gets_the_differential_and_the_annotated_picture(stack: Stack) -> None:
    user = stack.new_user()
    field = FIXTURES_DIR / "bccd" / "BloodImage_00015.jpg"
    stack.standin.send_document(user, field.read_bytes(), field.name, "image/jpeg")

    result = stack.result_for(user)
    assert "Field analysis" in (result.text or "")
    assert "Differential:" in (result.text or "") and "Red cells:" in (result.text or "")
    [picture] = stack.standin.wait_for(user, 1, predicate=lambda a: a.method == "sendPhoto")
    assert picture.file is not None
    with Image.open(io.BytesIO(picture.file)) as annotated:
        assert annotated.width > 640  # the photo plus the legend panel
    assert "white cell" in (picture.caption or "")

    [submission] = stack.delivered_submissions(user)
    assert submission.mode == "field" and submission.rbc_count and submission.rbc_count > 5
    kinds = {cell.kind for cell in submission.cells}
    assert {"wbc", "rbc"} <= kinds
    assert submission.picture_delivered_at is not None


def test_a_photo_that_is_not_a_smear_gets_a_specific_request(stack: Stack) -> None:
    user = stack.new_user()
    blank = jpeg_bytes(Image.new("RGB", (1600, 1200), (236, 236, 233)))
    stack.standin.send_document(user, blank, "blank.jpg", "image/jpeg")
    result = stack.result_for(user)
    assert "doesn't look like a stained blood smear" in (result.text or "")
    [submission] = stack.delivered_submissions(user)
    assert submission.status is SubmissionStatus.REJECTED


def test_the_bot_token_never_appears_in_the_logs(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.send_text(user, "/help")
    stack.standin.wait_for(user, 1)
    secret = stack.standin.token.split(":", 1)[1]
    for name, child in stack.children.items():
        assert secret not in child.log(), f"token leaked into the {name} log"
    assert "Application started" in stack.children["bot"].log()  # the log was really captured


def test_a_failed_download_is_recorded_and_answered(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.fail_next("getFile", Fault(status=500))
    stack.standin.send_document(user, FIXTURES["basophil"].read_bytes(), "cell.jpg", "image/jpeg")
    result = stack.result_for(user, timeout=30)
    assert "could not download" in (result.text or "")
    [submission] = stack.delivered_submissions(user)
    assert submission.status is SubmissionStatus.REJECTED
