"""Albums and the storage quota, through the real stack and the strict stand-in.

An album reaches the bot as one update per photo, handled side by side; the user must see one
acknowledgement and one answer for all of them, nothing lost and nothing twice.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from sqlalchemy import update

from bot import messages
from core.access import Sender
from core.db.models import Submission, utcnow
from core.db.session import transaction
from core.submissions import ALBUM_SETTLE, Received, record_submission
from devkit.harness import Stack, running_stack
from devkit.standin import BotAction, Fault
from tests.conftest import FIXTURES, fresh_postgres_database, jpeg_bytes, pbc_fixtures
from vision.labels import display_name

CELLS = pbc_fixtures()
QUOTA = 50_000_000


def beside_its_mirror(path: Path) -> bytes:
    """A BCCD field beside its mirror image, as one JPEG. At BCCD's magnification a 640 px field
    is only 1.4 of PBC's frames across, so with one white cell the analysis may answer it as a
    close-up; twice as wide it is a field whatever its scale reads."""
    field = Image.open(path).convert("RGB")
    wide = Image.new("RGB", (2 * field.width, field.height))
    wide.paste(field, (0, 0))
    wide.paste(ImageOps.mirror(field), (field.width, 0))
    return jpeg_bytes(wide, quality=90)


FIELDS = [beside_its_mirror(path) for path in sorted((FIXTURES / "bccd").glob("*.jpg"))]


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("albums")
    with fresh_postgres_database() as url, \
            running_stack(root, url, redis_url, {"HV_STORAGE_QUOTA_BYTES": str(QUOTA)}) \
            as running:
        yield running


def acks(stack: Stack, user: int) -> list[BotAction]:
    return [a for a in stack.standin.wait_for(user, 0, 0)
            if a.method == "sendMessage" and (a.text or "").startswith("📥")]


def answered(stack: Stack, user: int, count: int, timeout: float = 120) -> list[Submission]:
    stack.standin.wait_for(user, 1, timeout, lambda a: "Model:" in (a.text or ""))
    rows = stack.delivered_submissions(user, timeout=30)
    assert len(rows) == count and all(r.delivered_at for r in rows), stack.logs()
    return rows


def test_an_album_of_ten_photos_is_acknowledged_once_and_answered_as_one_result(
        stack: Stack) -> None:
    user = stack.new_user()
    photos = [*FIELDS, *(path.read_bytes() for path in CELLS.values())]
    assert len(photos) == 10
    album = stack.standin.send_album(user, [("photo", photo, None) for photo in photos])
    rows = answered(stack, user, 10)

    [ack] = acks(stack, user)
    # It quotes whichever photo was handled first: Telegram shows the quoted album either way.
    assert ack.text == messages.ACK_ALBUM and ack.reply_to in {m["message_id"] for m in album}
    assert {r.reply_message_id for r in rows} == {ack.message_id}
    assert {r.media_group_id for r in rows} == {album[0]["media_group_id"]}
    [result] = stack.results(user)
    assert result.method == "editMessageText" and result.message_id == ack.message_id
    text = result.text or ""
    # Only a notice of cells that could be blasts may come before the album's own first line.
    opening = [line for line in text.splitlines() if "could be blasts" not in line]
    assert opening[0].startswith("🔬 Album of 10 photos"), text
    assert [int(n) for n in re.findall(r"^Photo (\d+): ", text, re.M)] == list(range(1, 11))
    # The close-ups are named as the fixtures are labelled, in the order they were sent.
    lines = dict(re.findall(r"^Photo (\d+): (.*)$", text, re.M))
    for number, label in enumerate(CELLS, start=len(FIELDS) + 1):
        assert display_name(label) in lines[str(number)], text
    for number in range(1, len(FIELDS) + 1):
        assert lines[str(number)].startswith("field: "), text
    # Each photo can be confirmed or corrected from the one answer.
    buttons = [b["callback_data"] for row in (result.reply_markup or {})["inline_keyboard"]
               for b in row]
    assert sorted(buttons) == sorted([f"ok:{r.id}" for r in rows] + [f"fix:{r.id}" for r in rows])
    # The two fields' annotated pictures came as one album before the text, numbered alike.
    pictures = [a for a in stack.standin.wait_for(user, 0, 0) if a.method == "sendMediaGroup"]
    assert [p.caption.split(":")[0] for p in pictures if p.caption] == ["Photo 1", "Photo 2"]
    assert pictures[-1].at <= result.at
    annotated = [r for r in rows if r.annotated_sha256]
    assert len(annotated) == 2 and all(r.picture_delivered_at for r in annotated)


def test_an_album_with_a_bad_file_answers_every_item_in_its_one_result(stack: Stack) -> None:
    user = stack.new_user()
    good = CELLS["lymphocyte"].read_bytes()
    stack.standin.send_album(user, [("document", good, "cell.jpg"),
                                    ("document", b"not an image at all", "notes.jpg"),
                                    ("document", CELLS["eosinophil"].read_bytes(), "e.jpg")])
    rows = sorted(answered(stack, user, 3), key=lambda r: r.message_id)
    assert [r.status.value for r in rows] == ["done", "rejected", "done"]
    assert len(acks(stack, user)) == 1
    [result] = stack.results(user)
    lines = dict(re.findall(r"^Photo (\d+): (.*)$", result.text or "", re.M))
    assert "Lymphocyte" in lines["1"] and lines["2"].startswith("❌ not analysed")
    assert "Eosinophil" in lines["3"]


def test_an_album_whose_acknowledgement_fails_is_still_answered_once(stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.fail_next("sendMessage", Fault(status=502))
    stack.standin.send_album(user, [("photo", CELLS[label].read_bytes(), None)
                                    for label in ("neutrophil", "monocyte")])
    rows = answered(stack, user, 2, timeout=120)
    assert acks(stack, user) == [] and all(r.reply_message_id is None for r in rows)
    [result] = stack.results(user)
    assert result.method == "sendMessage" and "Album of 2 photos" in (result.text or "")


def test_an_album_photo_slow_to_download_is_waited_for_not_answered_apart(
        stack: Stack) -> None:
    user = stack.new_user()
    # One photo's file takes far longer to fetch than the album's wait for late photos: the
    # others are recorded and analysed long before it is.
    stack.standin.fail_next("getFile", Fault(status=200, delay=3 * ALBUM_SETTLE.total_seconds()))
    stack.standin.send_album(user, [("photo", CELLS[label].read_bytes(), None)
                                    for label in ("neutrophil", "monocyte", "lymphocyte")])
    answered(stack, user, 3)
    [result] = stack.results(user)  # one answer: the album was not split
    text = result.text or ""
    assert text.startswith("🔬 Album of 3 photos"), text
    assert [int(n) for n in re.findall(r"^Photo (\d+): ", text, re.M)] == [1, 2, 3]


@contextlib.contextmanager
def store_filled(stack: Stack, user: int, stored_bytes: int) -> Iterator[None]:
    """Earlier uploads (recorded as the bot records them) fill the store to ``stored_bytes``;
    afterwards they no longer count, as after the retention purge."""
    filler = record_submission(stack.sessions, Sender(user, None, None),
                               Received(user, 900_000 + user, "document", None, "old.tif"),
                               reply_message_id=None, sha256=f"{user:064x}",
                               stored_bytes=stored_bytes)
    try:
        yield
    finally:
        with transaction(stack.sessions) as session:
            session.execute(update(Submission).where(Submission.id == filler.submission_id)
                            .values(image_purged_at=utcnow(), delivered_at=utcnow()))


def refused_as_full(stack: Stack, user: int) -> None:
    """The user's one new upload was answered "storage is full" and nothing was stored."""
    [result] = stack.standin.wait_for(user, 1, 60, lambda a: "storage is full"
                                      in (a.text or "").lower())
    assert messages.STORAGE_FULL in (result.text or "")
    refused = [r for r in stack.submissions(user) if r.source != "document"
               or r.file_name != "old.tif"]
    assert [r.status.value for r in refused] == ["rejected"] and refused[0].sha256 is None


def test_a_full_store_refuses_new_photos_with_a_clear_message(stack: Stack) -> None:
    user = stack.new_user()
    with store_filled(stack, user, QUOTA):
        stack.standin.send_photo(user, CELLS["neutrophil"].read_bytes())
        refused_as_full(stack, user)
    stack.standin.send_photo(user, CELLS["monocyte"].read_bytes())
    stack.standin.wait_for(user, 1, 60, lambda a: "Monocyte" in (a.text or ""))


def test_the_quota_counts_what_would_be_stored_not_what_telegram_declares(stack: Stack) -> None:
    user = stack.new_user()
    buffer = io.BytesIO()
    Image.open(CELLS["eosinophil"]).convert("RGB").save(buffer, format="WEBP", quality=80)
    webp = buffer.getvalue()
    # Room for the WebP as sent, not for the PNG it is stored as.
    with store_filled(stack, user, QUOTA - 4 * len(webp)):
        stack.standin.send_document(user, webp, "cell.webp", "image/webp")
        refused_as_full(stack, user)
