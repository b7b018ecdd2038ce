"""Cases, access, expert corrections and retraining, through the chat, with every part real.

The Bot API stand-in over HTTP, the bot, an inference worker and a training worker as separate
processes, Redis as broker and PostgreSQL as the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image
from sqlalchemy import select, update

from core.db.models import AuditEvent, CellResult, LabelReview, ModelVersion, Submission, utcnow
from core.db.session import transaction
from core.enums import Role
from devkit.harness import Stack, running_stack
from devkit.standin import BotAction
from tests.conftest import fixture_image_folder, fresh_postgres_database, pbc_fixtures
from vision.labels import ALL_CLASSES

ADMIN = 900
FIXTURES = pbc_fixtures()
ADMIN_COMMANDS = ["/retrain", "/models", "/promote x", "/rollback", "/group 1 lab",
                  "/labname X"]
MEMBER_COMMANDS = ["/help", "/case R-1", "/history", "/export R-1", "hello"]


def _tiny_retraining(lr: float) -> dict[str, object]:
    return {"replay_fraction": 1.0, "val_per_class": 1, "epochs": 1, "resolution": 64,
            "batch_size": 16, "lr": lr, "expert_repeats": 1, "threads": 2}


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("cases")
    base = root / "base-data"
    for split in ("train", "val", "test"):
        fixture_image_folder(base / split)
    config = root / "retrain.json"
    config.write_text(json.dumps(_tiny_retraining(lr=0.0)))
    env = {"HV_ADMIN_IDS": str(ADMIN), "HV_TRAINING_DATA_DIR": str(base),
           "HV_RETRAIN_CONFIG": str(config)}
    with fresh_postgres_database() as url, running_stack(root, url, redis_url, env) as running:
        running.start_worker("trainer", training=True)
        yield running


def say(stack: Stack, user: int, text: str, replies: int = 1) -> list[BotAction]:
    """Send a text and return the bot's next ``replies`` actions in that chat."""
    before = len(stack.standin.wait_for(user, 0, 0))
    stack.standin.send_text(user, text)
    actions = stack.standin.wait_for(user, before + replies, 30)
    assert len(actions) >= before + replies, f"no reply to {text!r}:\n{stack.logs()}"
    return actions[before:]


def press(stack: Stack, user: int, message_id: int, data: str,
          replies: int = 1) -> list[BotAction]:
    before = len(stack.standin.wait_for(user, 0, 0))
    stack.standin.press_button(user, message_id, data)
    actions = stack.standin.wait_for(user, before + replies, 30)
    assert len(actions) >= before + replies, f"no reply to button {data!r}:\n{stack.logs()}"
    return actions[before:]


def send_cell(stack: Stack, user: int, label: str) -> Submission:
    """Send a fixture cell as a file; returns its submission once the result is delivered."""
    return send_file(stack, user, FIXTURES[label].read_bytes(), f"{label}.jpg", "image/jpeg")


def send_file(stack: Stack, user: int, data: bytes, name: str, mime_type: str) -> Submission:
    """Send an image as a file; returns its submission once the result is delivered."""
    before = len(stack.submissions(user))
    stack.standin.send_document(user, data, name, mime_type)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = stack.submissions(user)
        if len(rows) > before and rows[-1].delivered_at is not None:
            return rows[-1]
        time.sleep(0.1)
    raise AssertionError(f"no delivered result for {name}:\n{stack.logs()}")


def buttons(action: BotAction) -> list[str]:
    markup = action.reply_markup or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def correct_the_cell(stack: Stack, reviewer: int, result: BotAction, submission_id: int,
                     label: str) -> BotAction:
    """The reviewer corrects the one cell of a result to ``label`` through the buttons, as a
    person presses them; returns the bot's answer."""
    menu = press(stack, reviewer, result.message_id, f"fix:{submission_id}", replies=2)[-1]
    [cell_button] = buttons(menu)
    choice = press(stack, reviewer, menu.message_id, cell_button, replies=2)[-1]
    chosen = f"{cell_button.replace('cell:', 'set:')}:{ALL_CLASSES.index(label)}"
    assert chosen in buttons(choice)
    return press(stack, reviewer, menu.message_id, chosen, replies=2)[-1]


def test_registration_needs_an_admins_approval(stack: Stack) -> None:
    newcomer = stack.new_user(role=Role.PENDING)
    [reply] = say(stack, newcomer, "/start")
    assert "sent to the administrators" in (reply.text or "")
    requests = stack.standin.wait_for(
        ADMIN, 1, 30, predicate=lambda a: f"id {newcomer})" in (a.text or ""))
    assert requests, stack.logs()
    request = requests[-1]
    approve_as_reviewer = [d for d in buttons(request) if d.startswith("acc:")][1]

    before = len(stack.standin.wait_for(newcomer, 0, 0))
    press(stack, ADMIN, request.message_id, approve_as_reviewer, replies=2)
    decided = stack.standin.wait_for(
        ADMIN, 1, 30, predicate=lambda a: a.method == "editMessageText"
        and a.message_id == request.message_id)
    assert "approved as reviewer" in (decided[-1].text or "")
    told = stack.standin.wait_for(newcomer, before + 1, 30)[before:]
    assert "approved (reviewer)" in (told[0].text or "")
    [history] = say(stack, newcomer, "/history")
    assert "Cases" in (history.text or "") or "No cases yet" in (history.text or "")


def test_an_unapproved_user_gets_only_a_polite_refusal(stack: Stack) -> None:
    stranger = stack.new_user(role=Role.PENDING)  # never sent /start
    for text in MEMBER_COMMANDS + ADMIN_COMMANDS:
        [reply] = say(stack, stranger, text)
        assert reply.text == ("Sorry, this bot is for approved laboratory staff only. Send /start "
                              "to ask for access."), text
    [reply] = press(stack, stranger, 1, "case:1")
    assert reply.method == "answerCallbackQuery" and "approved laboratory staff" in reply.text
    before = len(stack.standin.wait_for(stranger, 0, 0))
    stack.standin.send_photo(stranger, FIXTURES["neutrophil"].read_bytes())
    [reply] = stack.standin.wait_for(stranger, before + 1, 30)[before:]
    assert "approved laboratory staff" in (reply.text or "")
    assert stack.submissions(stranger) == []  # nothing was stored or queued
    with stack.sessions() as session:
        refused = session.scalars(select(AuditEvent.action).where(
            AuditEvent.telegram_id == stranger, AuditEvent.allowed.is_(False))).all()
    assert set(refused) == {"retrain", "models", "promote", "rollback", "group", "labname"}

    # Once they have asked, they are told that the request waits, not to ask again.
    say(stack, stranger, "/start")
    before = len(stack.standin.wait_for(stranger, 0, 0))
    stack.standin.send_photo(stranger, FIXTURES["neutrophil"].read_bytes())
    [reply] = stack.standin.wait_for(stranger, before + 1, 30)[before:]
    assert reply.text == ("Your access request is still waiting for an administrator. I will "
                          "tell you here as soon as it is decided.")
    [reply] = say(stack, stranger, "/history")
    assert "still waiting for an administrator" in (reply.text or "")
    assert stack.submissions(stranger) == []


def test_an_unknown_command_is_named_as_one_not_taken_for_a_photo(stack: Stack) -> None:
    user = stack.new_user()
    [reply] = say(stack, user, "/foo bar")
    assert reply.text == "I do not know the command /foo. /help lists the commands."
    [reply] = say(stack, user, "hello")
    assert "I can only analyse images" in (reply.text or "")


def test_a_non_admin_cannot_retrain_promote_or_roll_back(stack: Stack) -> None:
    reviewer = stack.new_user(role=Role.REVIEWER)
    for text in ["/retrain", "/promote pbc-lite0-ft-v1", "/rollback", "/models"]:
        [reply] = say(stack, reviewer, text)
        assert "only administrators" in (reply.text or ""), text
    with stack.sessions() as session:
        refused = session.scalars(select(AuditEvent.action).where(
            AuditEvent.telegram_id == reviewer, AuditEvent.allowed.is_(False))).all()
    assert sorted(refused) == ["models", "promote", "retrain", "rollback"]


def test_a_case_with_two_photos_shows_their_summed_totals(stack: Stack) -> None:
    tech = stack.new_user()
    [opened] = say(stack, tech, "/case H24-0001")
    assert "New case H24-0001" in (opened.text or "")
    first = send_cell(stack, tech, "eosinophil")
    second = send_cell(stack, tech, "neutrophil")
    assert first.case_id == second.case_id is not None

    shown, chart = say(stack, tech, "/case H24-0001", replies=2)
    text = shown.text or ""
    assert "Photo 1" in text and "Photo 2" in text
    assert "Case total: 2 white cells: Neutrophil 1 (50%), Eosinophil 1 (50%)" in text
    assert chart.method == "sendPhoto" and "Differential of case H24-0001" in (chart.caption or "")
    with Image.open(io.BytesIO(chart.file or b"")) as picture:
        assert picture.width >= 400 and min(picture.convert("L").getextrema()) < 100


def test_a_photo_without_a_case_goes_to_the_automatic_case_of_the_day(stack: Stack) -> None:
    tech = stack.new_user()
    submission = send_cell(stack, tech, "lymphocyte")
    [history] = say(stack, tech, "/history")
    assert "auto-" in (history.text or "") and f"-{tech}: 1 photo(s)" in (history.text or "")
    assert submission.case_id is not None


def test_cases_are_private_to_a_laboratory_group(stack: Stack) -> None:
    alice, bob = stack.new_user(group="lab-a"), stack.new_user(group="lab-b")
    say(stack, alice, "/case A-77")
    alice_photo = send_cell(stack, alice, "monocyte")

    [listing] = say(stack, bob, "/history")
    assert "A-77" not in (listing.text or "")
    [export] = say(stack, bob, "/export A-77")
    assert export.text == "I cannot find that in your laboratory's records."
    for forged in (f"case:{alice_photo.case_id}", f"exp:{alice_photo.case_id}"):
        [refusal] = press(stack, bob, 1, forged)
        assert refusal.method == "answerCallbackQuery" and "cannot find" in refusal.text
    # The same reference in another laboratory is another case.
    [own] = say(stack, bob, "/case A-77")
    assert "New case A-77 (group lab-b" in (own.text or "")


def test_export_sends_a_csv_of_every_cell_and_a_pdf_report(stack: Stack, tmp_path: Path) -> None:
    lab_admin = stack.new_user(role=Role.ADMIN)
    [named] = say(stack, lab_admin, "/labname St Elsewhere Haematology")
    assert "header: St Elsewhere Haematology" in (named.text or "")
    tech = stack.new_user()
    say(stack, tech, "/case EXP-1")
    [refused] = say(stack, tech, "/wbc lots")
    assert "Usage: /wbc COUNT" in (refused.text or "")
    [recorded] = say(stack, tech, "/wbc 7,2")
    assert "Case EXP-1: white-cell count 7.2 x10^9/L recorded" in (recorded.text or "")
    send_cell(stack, tech, "basophil")
    send_cell(stack, tech, "ig")

    documents = say(stack, tech, "/export EXP-1", replies=2)
    assert [d.method for d in documents] == ["sendDocument", "sendDocument"]
    csv_doc, pdf_doc = documents
    rows = list(csv.DictReader(io.StringIO((csv_doc.file or b"").decode())))
    assert [(r["photo"], r["label"]) for r in rows] == [("1", "basophil"), ("2", "ig")]
    assert all(r["model_version"] and float(r["confidence"]) > 0 for r in rows)

    pdf = pypdfium2.PdfDocument(pdf_doc.file)
    assert len(pdf) == 2  # the summary, then the photos six to a page
    summary = " ".join(pdf[0].get_textpage().get_text_range().split())
    assert "St Elsewhere Haematology" in summary and "Case EXP-1" in summary
    # A basophil and an immature granulocyte: half of 7.2 x10^9/L each, above their ranges.
    assert "Basophil 1 50.0 0-2 3.60 0.02-0.1 H" in summary, summary
    assert "Reviewed and authorised by" in summary
    page = pdf[0].render(scale=1).to_pil()
    page.save(tmp_path / "first-page.png")
    assert page.size[0] > 500 and page.size[1] > 700
    # Not a blank page: text, the table and the chart leave dark pixels.
    assert min(page.convert("L").getextrema()) < 80


def test_a_reviewers_correction_is_stored_and_appears_in_the_history(stack: Stack) -> None:
    reviewer = stack.new_user(role=Role.REVIEWER)
    say(stack, reviewer, "/case REV-1")
    submission = send_cell(stack, reviewer, "eosinophil")
    result = stack.result_for(reviewer)
    assert buttons(result) == [f"ok:{submission.id}", f"fix:{submission.id}"]

    plain = stack.new_user()
    [refusal] = press(stack, plain, result.message_id, f"fix:{submission.id}")
    assert "Only reviewers" in (refusal.text or "")

    stored = correct_the_cell(stack, reviewer, result, submission.id, "monocyte")
    assert "Eosinophil → Monocyte" in (stored.text or "")

    with stack.sessions() as session:
        cell = session.scalars(select(CellResult).where(
            CellResult.submission_id == submission.id)).one()
        review = session.scalars(select(LabelReview).where(LabelReview.cell_id == cell.id)).one()
        assert (cell.label, cell.expert_label) == ("eosinophil", "monocyte")
        assert (review.previous_label, review.label) == ("eosinophil", "monocyte")
        assert review.reviewer.telegram_id == reviewer
    shown, _chart = say(stack, reviewer, "/case REV-1", replies=2)
    assert f"Eosinophil → Monocyte by @user{reviewer}" in (shown.text or "")
    assert "Case total: 1 white cells: Monocyte 1 (100%)" in (shown.text or "")
    [listing] = say(stack, reviewer, "/history")
    assert "REV-1: 1 photo(s), 1 white cell(s), 1 correction(s)" in (listing.text or "")


def test_a_button_of_a_purged_photo_says_the_photo_is_gone_and_stores_nothing(
    stack: Stack,
) -> None:
    reviewer = stack.new_user(role=Role.REVIEWER)
    say(stack, reviewer, "/case OLD-1")
    submission = send_cell(stack, reviewer, "lymphocyte")
    result = stack.result_for(reviewer)
    with transaction(stack.sessions) as session:  # what the retention purge does
        session.execute(update(Submission).where(Submission.id == submission.id)
                        .values(image_purged_at=utcnow()))
    [answer] = press(stack, reviewer, result.message_id, f"ok:{submission.id}")
    assert answer.method == "answerCallbackQuery" and "deleted after the retention period" \
        in (answer.text or "")
    with stack.sessions() as session:
        cell = session.scalars(select(CellResult).where(
            CellResult.submission_id == submission.id)).one()
        assert cell.expert_label is None


def _version_of(stack: Stack, user: int, label: str = "neutrophil") -> str:
    submission = send_cell(stack, user, label)
    with stack.sessions() as session:
        row = session.get(ModelVersion, submission.model_version_id)
        cells = session.scalars(select(CellResult.model_version_id).where(
            CellResult.submission_id == submission.id)).all()
        assert row is not None and set(cells) == {row.id}
        return row.version


def _finished_job(stack: Stack, queued: BotAction, admin: int = ADMIN,
                  timeout: float = 180) -> list[BotAction]:
    def ended(action: BotAction) -> bool:
        text = action.text or ""
        return (action.method == "editMessageText" and action.message_id == queued.message_id
                and ("finished" in text or "failed" in text))

    edits = stack.standin.wait_for(admin, 1, timeout, predicate=ended)
    assert edits, stack.logs()
    return [a for a in stack.standin.wait_for(admin, 0, 0)
            if a.message_id == queued.message_id]


def roll_back_and_promote_again(stack: Stack, admin: int, tech: int, base: str,
                                candidate: str) -> None:
    """/rollback serves ``base`` again and /promote brings ``candidate`` back, each seen in
    the version that answers ``tech``'s next photo."""
    [rolled] = say(stack, admin, "/rollback")
    assert f"Rolled back from {candidate}" in (rolled.text or "")
    assert _version_of(stack, tech) == base
    [promoted] = say(stack, admin, f"/promote {candidate}")
    assert f"{candidate} is now active" in (promoted.text or "")
    assert _version_of(stack, tech) == candidate


def test_retraining_from_the_chat_is_gated_and_versions_switch_without_restart(
    stack: Stack,
) -> None:
    tech = stack.new_user()
    base = _version_of(stack, tech)

    queued, = say(stack, ADMIN, "/retrain")
    assert "queued" in (queued.text or "")
    [refused] = say(stack, ADMIN, "/retrain")
    assert "already running" in (refused.text or "")
    progress = _finished_job(stack, queued)
    texts = [a.text or "" for a in progress]
    assert any("Retraining job 1:" in t and "…" in t for t in texts[1:-1]), texts  # progress
    assert "epoch 1: validation accuracy" in texts[-1], texts[-1]
    assert "Passed the gate and is now active" in texts[-1], texts[-1]
    with stack.sessions() as session:
        corrected = len(session.scalars(select(CellResult.id).where(
            CellResult.expert_label.is_not(None))).all())
    if corrected:  # the review test above stored one; the line is left out when there are none
        # At lr 0 the candidate is the active model, so both give the same count.
        assert re.search(rf"label: (\d+) of {corrected} \(active model: \1\)", texts[-1]), \
            texts[-1]
    candidate = f"{base}-rt1"
    assert candidate in texts[-1]

    assert _version_of(stack, tech) == candidate  # the worker switched without a restart
    roll_back_and_promote_again(stack, ADMIN, tech, base, candidate)

    # A recipe that wrecks the network must be stopped by the gate.
    config = Path(stack.env["HV_RETRAIN_CONFIG"])
    config.write_text(json.dumps(_tiny_retraining(lr=0.5)))
    queued, = say(stack, ADMIN, "/retrain")
    ended = _finished_job(stack, queued)[-1]
    final = ended.text or ""
    # Kept back, with what is worse in plain words: it names fewer cells right, and its doubt
    # (a calibrated wreck is unsure of everything) would flag every cell for review.
    assert "⏸ Not promoted: it stays a candidate" in final, final
    assert "base test cells right, against 100.00% for the active model" in final, final
    assert re.search(r"flags 100\.0% of the base test cells for review, against \d", final), final
    assert buttons(ended) == ["mp:2", "md:2"]
    [models] = say(stack, ADMIN, "/models")
    assert f"▶️ {candidate}: active" in (models.text or "")
    assert f"{base}-rt2: candidate" in (models.text or "")
    assert _version_of(stack, tech) == candidate
    # A technician cannot decide; the admin discards it, and it can no longer be promoted.
    [refused] = press(stack, tech, ended.message_id, "md:2")
    assert refused.method == "answerCallbackQuery"
    discarded = press(stack, ADMIN, ended.message_id, "md:2", replies=2)[-1]
    assert f"🗑 {base}-rt2 discarded by" in (discarded.text or "")
    [again] = say(stack, ADMIN, f"/promote {base}-rt2")
    assert "was discarded" in (again.text or "")
    assert _version_of(stack, tech) == candidate
