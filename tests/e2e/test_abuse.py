"""Abuse through the real stack: hostile files, forged buttons, floods, hostile file names."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.db.models import CellResult
from core.enums import FINISHED_STATUSES, Role
from core.storage import FolderBlobs
from devkit.harness import Stack, running_stack
from devkit.standin import BotAction
from tests.conftest import fresh_postgres_database, pbc_fixtures
from tests.hostile import Upload, bombs, corpus, not_images, scan_bomb

CELLS = pbc_fixtures()
PHOTO_LIMIT = 4
CALLBACKS = ["acc:1:1", "hist:0", "case:1", "exp:1", "ok:1", "fix:1", "cell:1", "set:1:0"]


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("abuse")
    env = {"HV_MAX_PHOTOS_PER_MINUTE": str(PHOTO_LIMIT)}
    with fresh_postgres_database() as url, running_stack(root, url, redis_url, env) as running:
        yield running


def press(stack: Stack, user: int, data: str) -> BotAction:
    before = len(stack.standin.wait_for(user, 0, 0))
    stack.standin.press_button(user, 1, data)
    actions = stack.standin.wait_for(user, before + 1, 30)
    assert len(actions) > before, f"no answer to {data}:\n{stack.logs()}"
    return actions[before]


def _sample() -> list[Upload]:
    everything = corpus()
    return [*everything[::40], *bombs()[:3], *not_images()[:4]]


def test_hostile_files_each_get_a_clear_answer_and_none_is_left_unfinished(stack: Stack) -> None:
    users = {}
    for upload in _sample():
        user = stack.new_user()
        users[user] = upload
        stack.standin.send_document(user, upload.data, upload.name, upload.mime)
    for user, upload in users.items():
        result = stack.result_for(user, timeout=120)
        text = result.text or ""
        assert text.startswith(("❌", "🔬")), f"{upload.name}: {text}"
    deadline = time.monotonic() + 30
    while True:
        rows = [row for user in users for row in stack.submissions(user)]
        if all(r.status in FINISHED_STATUSES and r.delivered_at for r in rows):
            break
        assert time.monotonic() < deadline, [(r.file_name, r.status) for r in rows]
        time.sleep(0.2)
    assert len(rows) == len(users)
    for name, child in stack.children.items():
        assert child.process.poll() is None, f"{name} died"


def test_every_button_is_refused_to_an_unapproved_user(stack: Stack) -> None:
    stranger = stack.new_user(role=Role.PENDING)
    for data in CALLBACKS:
        answer = press(stack, stranger, data)
        assert answer.method == "answerCallbackQuery", data
        assert "approved laboratory staff" in (answer.text or ""), data


def test_buttons_beyond_a_users_role_are_refused(stack: Stack) -> None:
    user = stack.new_user()
    assert "only administrators" in (press(stack, user, "acc:1:2").text or "")
    for data in ("ok:1", "fix:1", "cell:1", "set:1:0"):
        assert "Only reviewers" in (press(stack, user, data).text or ""), data


def test_button_data_cannot_reach_another_laboratorys_cells(stack: Stack) -> None:
    owner = stack.new_user(group="lab-north")
    stack.standin.send_document(owner, CELLS["monocyte"].read_bytes(), "m.jpg", "image/jpeg")
    stack.result_for(owner)
    [submission] = stack.delivered_submissions(owner)
    [cell] = submission.cells
    intruder = stack.new_user(role=Role.REVIEWER, group="lab-south")
    for data in (f"ok:{submission.id}", f"fix:{submission.id}", f"cell:{cell.id}",
                 f"set:{cell.id}:0", f"case:{submission.case_id}", f"exp:{submission.case_id}",
                 "set:not-a-number:0", "set:1:999", "nonsense"):
        answer = press(stack, intruder, data)
        assert answer.text == "I cannot find that in your laboratory's records.", data
    with stack.sessions() as session:
        assert session.get(CellResult, cell.id).expert_label is None  # type: ignore[union-attr]


def test_a_flood_of_photos_is_limited_politely(stack: Stack) -> None:
    user = stack.new_user()
    for _ in range(PHOTO_LIMIT + 2):
        stack.standin.send_photo(user, CELLS["neutrophil"].read_bytes())
    refusals = stack.standin.wait_for(
        user, 2, 30, predicate=lambda a: "more than 4 photos in a minute" in (a.text or ""))
    assert len(refusals) == 2, stack.logs()
    deadline = time.monotonic() + 90
    while len([r for r in stack.submissions(user) if r.delivered_at]) < PHOTO_LIMIT:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.2)
    assert len(stack.submissions(user)) == PHOTO_LIMIT  # the refused ones were not kept


def test_a_file_name_never_becomes_a_storage_path(stack: Stack) -> None:
    user = stack.new_user()
    hostile_name = "../../../../tmp/owned.jpg"
    stack.standin.send_document(user, CELLS["lymphocyte"].read_bytes(), hostile_name,
                                "image/jpeg")
    stack.result_for(user)
    [submission] = stack.delivered_submissions(user)
    assert submission.file_name == hostile_name  # kept as data, for the record
    stored = [p for p in (stack.root / "images").rglob("*") if p.is_file()]
    assert FolderBlobs(stack.root / "images").path_of(submission.sha256 or "") in stored
    assert all(p.resolve().is_relative_to((stack.root / "images").resolve()) for p in stored)
    with stack.sessions() as session:
        assert session.scalars(select(CellResult).where(
            CellResult.submission_id == submission.id)).one().label == "lymphocyte"


def test_a_scan_bomb_is_refused_unread_while_a_colleagues_photo_is_answered(stack: Stack) -> None:
    bomber, colleague = stack.new_user(), stack.new_user()
    stack.standin.send_document(bomber, scan_bomb(2000), "scans.jpg", "image/jpeg")
    stack.standin.send_photo(colleague, CELLS["monocyte"].read_bytes())
    refused = stack.result_for(bomber, timeout=60).text or ""
    assert "built of 20" in refused and "scans" in refused, refused
    assert "Monocyte" in (stack.result_for(colleague, timeout=90).text or "")
    [row] = stack.submissions(bomber)
    assert row.status.value == "rejected" and row.sha256 is None  # nothing stored or queued
