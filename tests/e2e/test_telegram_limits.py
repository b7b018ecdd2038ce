"""Answers that outgrow one Telegram message reach the user whole, through the strict stand-in.

The case's 30 photos are written through core's own recording functions (as the bot and the
worker would), so the test is about what the chat shows, not about classifying 30 images.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from bot import messages
from core.access import Sender
from core.db.models import Submission
from core.registry import ModelRef, active_model, add_candidate, register_model
from core.settings import DEFAULT_MODEL_PATH
from core.submissions import (
    Received,
    mark_delivered,
    record_submission,
    start_processing,
    store_results,
)
from devkit.harness import Stack, running_stack
from devkit.standin import BotAction, Fault, FloodLimits
from tests.conftest import fresh_postgres_database, pbc_fixtures
from tests.e2e.test_cases_and_retraining import say
from vision.field.results import Analysis, Cell
from vision.labels import PBC_CLASSES
from vision.model.artifact import ModelCard, verified_card
from vision.model.classifier import LabelScore

ADMIN = 902
PHOTOS = 30
CELLS = pbc_fixtures()
QUEUE_CAP = 3  # photos waiting for a worker before new ones are refused


def is_result_message(action: BotAction) -> bool:
    return action.method == "sendMessage" and "Model:" in (action.text or "")


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("limits")
    with fresh_postgres_database() as url, \
            running_stack(root, url, redis_url, {"HV_ADMIN_IDS": str(ADMIN),
                                                 "HV_MAX_QUEUE_DEPTH": str(QUEUE_CAP)}) as running:
        yield running


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def shipped_model(stack: Stack) -> ModelRef:
    register_model(stack.sessions, verified_card(DEFAULT_MODEL_PATH), str(DEFAULT_MODEL_PATH))
    model = active_model(stack.sessions)
    assert model is not None
    return model


def a_crowded_case(stack: Stack, user: int) -> None:
    """30 field photos in the user's open case, each with every white-cell class, already
    answered (so the outbox has nothing of them to send)."""
    [opened] = say(stack, user, "/case LONG-1")
    assert "New case LONG-1" in (opened.text or "")
    model = shipped_model(stack)
    for number in range(PHOTOS):
        outcome = record_submission(stack.sessions, Sender(user, f"user{user}", None),
                                    Received(user, 10_000 + number, "photo", None, None),
                                    reply_message_id=None, sha256="b" * 64)
        start_processing(stack.sessions, outcome.submission_id)
        cells = [Cell("wbc", (10 * i, 0, 10 * i + 9, 9), False, label, 0.9,
                      (LabelScore(label, 0.9),), False) for i, label in enumerate(PBC_CLASSES)]
        store_results(stack.sessions, outcome.submission_id,
                      Analysis("field", 100, 100, cells, [], rbc_count=40, platelet_count=3,
                               quality=None, model=model.version), model.id)
        mark_delivered(stack.sessions, outcome.submission_id)


def test_a_30_photo_case_arrives_whole_in_messages_within_the_limit(stack: Stack) -> None:
    user = stack.new_user()
    a_crowded_case(stack, user)
    before = len(stack.standin.wait_for(user, 0, 0))
    stack.standin.send_text(user, "/case LONG-1")
    replies = stack.standin.wait_for(
        user, before + 1, 30, predicate=lambda a: a.reply_markup is not None)[before:]
    assert replies, stack.logs()
    texts = [a.text or "" for a in stack.standin.wait_for(user, 0, 0)[before:]
             if a.method == "sendMessage"]
    assert len(texts) >= 2 and all(utf16(t) <= 4096 for t in texts)
    whole = "\n".join(texts)
    assert [int(n) for n in re.findall(r"^Photo (\d+) ", whole, re.M)] == \
        list(range(1, PHOTOS + 1))
    assert "Case total:" in texts[-1]

    [listing] = say(stack, user, "/history")
    assert f"{PHOTOS} photo(s), {PHOTOS * len(PBC_CLASSES)} white cell(s)" in (listing.text or "")


def test_a_long_list_of_model_versions_is_split_not_lost(stack: Stack) -> None:
    model = shipped_model(stack)
    # A gate that refused on every class: one reason per class, as the real gate writes them.
    gate = {"passed": False, "reasons": [
        f"{label} recall fell from 99.1% to 97.8% (more than the 1.0-point margin)"
        for label in PBC_CLASSES]}
    for number in range(40):
        card = ModelCard(version=f"long-version-name-for-a-laboratory-{number:02d}",
                         classes=list(PBC_CLASSES), sha256=f"{number:064x}")
        add_candidate(stack.sessions, card, f"/models/{number}.safetensors", model.version,
                      gate)
    before = len(stack.standin.wait_for(ADMIN, 0, 0))
    stack.standin.send_text(ADMIN, "/models")
    ended: list[BotAction] = stack.standin.wait_for(
        ADMIN, before + 1, 30, predicate=lambda a: "/promote VERSION" in (a.text or ""))
    assert ended, stack.logs()
    texts = [a.text or "" for a in stack.standin.wait_for(ADMIN, 0, 0)[before:]]
    assert len(texts) >= 2 and all(utf16(t) <= 4096 for t in texts)
    # /models lists the newest ten; all of them arrive.
    assert sum(t.count("long-version-name") for t in texts) == 10


def submission_of(stack: Stack, user: int, done: Callable[[Submission], bool],
                  timeout: float = 60) -> Submission:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.submissions(user)
        if rows and done(rows[-1]):
            return rows[-1]
        time.sleep(0.2)
    raise AssertionError(f"submission of {user} never got there:\n{stack.logs()}")


def test_a_user_who_blocked_the_bot_is_recorded_once_and_never_retried(stack: Stack) -> None:
    blocker, other = stack.new_user(), stack.new_user()
    stack.standin.send_photo(blocker, CELLS["neutrophil"].read_bytes())
    assert stack.standin.wait_for(blocker, 1, 30), stack.logs()  # the acknowledgement
    stack.standin.api.state.blocked.add(blocker)
    row = submission_of(stack, blocker, lambda s: s.delivery_error is not None)
    assert "blocked" in (row.delivery_error or "") and row.delivered_at is None
    attempts = row.delivery_attempts

    stack.standin.send_photo(other, CELLS["lymphocyte"].read_bytes())
    assert "Model:" in (stack.result_for(other).text or "")  # others are answered meanwhile
    time.sleep(2)  # several outbox passes
    assert stack.submissions(blocker)[-1].delivery_attempts == attempts == 1


def test_a_result_follows_a_group_that_became_a_supergroup(stack: Stack) -> None:
    user = stack.new_user()
    supergroup = -100_000_000_000 - user
    stack.standin.send_photo(user, CELLS["eosinophil"].read_bytes())
    assert stack.standin.wait_for(user, 1, 30), stack.logs()
    stack.standin.api.state.migrated[user] = supergroup
    results = stack.standin.wait_for(supergroup, 1, 60, predicate=is_result_message)
    assert results and "Eosinophil" in (results[0].text or ""), stack.logs()
    # The row now belongs to the supergroup's chat.
    row = submission_of(stack, supergroup, lambda s: s.delivered_at is not None)
    assert row.delivery_error is None and stack.submissions(user) == []


def test_an_edited_photo_is_not_analysed_again(stack: Stack) -> None:
    user = stack.new_user()
    sent = stack.standin.send_photo(user, CELLS["monocyte"].read_bytes())
    stack.result_for(user)
    actions = len(stack.standin.wait_for(user, 0, 0))
    stack.standin.call(stack.standin.api.edit_message(sent, caption="slide 2, field 3"))
    time.sleep(3)
    assert len(stack.submissions(user)) == 1
    assert len(stack.standin.wait_for(user, 0, 0)) == actions  # nothing said about the edit


def test_joins_and_leaves_in_a_group_get_no_answer(stack: Stack) -> None:
    user = stack.new_user()
    group = -4_000_000 - user
    api = stack.standin.api
    stack.standin.call(api.group_event(group, user, new_chat_members=[api.state.user(user + 1)]))
    stack.standin.call(api.group_event(group, user, left_chat_member=api.state.user(user + 2)))
    time.sleep(3)
    assert stack.standin.wait_for(group, 0, 0) == []


def test_a_photo_whose_acknowledgement_failed_is_still_analysed_and_answered(
        stack: Stack) -> None:
    user = stack.new_user()
    stack.standin.fail_next("sendMessage", Fault(status=502))
    stack.standin.send_photo(user, CELLS["basophil"].read_bytes())
    row = submission_of(stack, user, lambda s: s.status.value == "done", timeout=30)
    assert row.reply_message_id is None  # no acknowledgement to edit
    results = stack.standin.wait_for(user, 1, 60, predicate=is_result_message)
    assert results and "Basophil" in (results[0].text or ""), stack.logs()


def test_a_burst_under_flood_control_is_answered_once_each(stack: Stack) -> None:
    user = stack.new_user()
    flood = FloodLimits(chat_burst=3, chat_per_second=0.5)
    stack.standin.api.state.flood = flood
    try:
        labels = ["neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil", "platelet"]
        for label in labels:
            stack.standin.send_photo(user, CELLS[label].read_bytes())
        submission_of(stack, user, lambda _s: len(stack.submissions(user)) == len(labels)
                             and all(r.delivered_at for r in stack.submissions(user)),
                             timeout=150)
        assert flood.refused > 0  # Telegram did push back
    finally:
        stack.standin.api.state.flood = None
    rows = stack.submissions(user)
    assert all(r.delivery_error is None for r in rows)
    answers = [a for a in stack.standin.wait_for(user, 0, 0) if "Model:" in (a.text or "")]
    # Each photo's result was shown once: as an edit of its acknowledgement, or as a new
    # message where the acknowledgement itself was refused.
    assert len(answers) == len(labels), [a.text for a in answers]


def test_a_full_queue_is_answered_busy_once_per_burst_and_nothing_queued_is_lost(
        stack: Stack) -> None:
    user = stack.new_user()
    stack.stop("worker")  # nothing is taken off the queue now
    for label in ("neutrophil", "lymphocyte", "monocyte"):
        stack.standin.send_photo(user, CELLS[label].read_bytes())
    submission_of(stack, user, lambda _s: len(stack.submissions(user)) == QUEUE_CAP)
    before = len(stack.standin.wait_for(user, 0, 0))
    for label in ("eosinophil", "basophil"):
        stack.standin.send_photo(user, CELLS[label].read_bytes())
    busy = stack.standin.wait_for(user, before + 1, 30)[before:]
    time.sleep(2)
    told = [a for a in stack.standin.wait_for(user, 0, 0)[before:] if a.text == messages.BUSY]
    assert busy and len(told) == 1  # one answer for the burst, not one per photo
    assert len(stack.submissions(user)) == QUEUE_CAP  # the refused ones were not kept

    stack.start_worker()
    results = stack.standin.wait_for(user, QUEUE_CAP, 90,
                                     predicate=lambda a: a.method == "editMessageText")
    assert len(results) == QUEUE_CAP, stack.logs()


def test_in_a_group_the_bot_answers_what_is_addressed_to_it_and_hears_nothing_else(
        stack: Stack) -> None:
    user = stack.new_user()
    group = -5_000_000 - user
    api = stack.standin.api
    # Privacy mode: a photo or a command for another bot never reaches the bot.
    assert stack.standin.call(api.group_message(
        group, user, photo=CELLS["neutrophil"].read_bytes())) is None
    assert stack.standin.call(api.group_message(group, user, text="/help@another_bot")) is None
    stack.standin.call(api.group_message(group, user, text="/help@hematovision_bot"))
    [help_reply] = stack.standin.wait_for(group, 1, 30)
    assert help_reply.text == messages.help_text("hematovision_bot")
    # A photo that mentions the bot, and one sent as a reply to it, are analysed in the group.
    stack.standin.call(api.group_message(group, user, photo=CELLS["lymphocyte"].read_bytes(),
                                         caption="@hematovision_bot slide 4"))
    stack.standin.call(api.group_message(group, user, photo=CELLS["eosinophil"].read_bytes(),
                                         reply_to=help_reply.message_id))
    results = stack.standin.wait_for(group, 2, 90, predicate=lambda a: a.method ==
                                     "editMessageText" and "Model:" in (a.text or ""))
    # Each reply names its own cell first (the runners-up follow it).
    assert sorted(_named_first(r.text or "", ("Eosinophil", "Lymphocyte"))
                  for r in results) == ["Eosinophil", "Lymphocyte"], stack.logs()
    assert [r.chat_id for r in stack.submissions(group)] == [group, group]


def _named_first(text: str, labels: tuple[str, ...]) -> str | None:
    """Which of ``labels`` the reply names first."""
    found = [(text.find(label), label) for label in labels if label in text]
    return min(found)[1] if found else None
