"""The submission lifecycle on both databases: idempotent recording, results, delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from core.access import Sender
from core.db import migrate
from core.db.models import Submission, utcnow
from core.db.session import make_engine, make_session_factory, transaction
from core.enums import SubmissionStatus
from core.registry import register_model
from core.submissions import (
    ALBUM_SETTLE,
    GAVE_UP,
    MAX_ATTEMPTS,
    MAX_DELIVERY_ATTEMPTS,
    Received,
    claim_stale,
    defer_delivery,
    delivery_failed,
    mark_delivered,
    pending_deliveries,
    record_submission,
    start_processing,
    store_results,
)
from vision.field.results import Analysis, Cell
from vision.model.artifact import ModelCard
from vision.model.classifier import LabelScore

SENDER = Sender(77, "tech", "Lab Tech")


def _factory(url: str):  # type: ignore[no-untyped-def]
    migrate.upgrade(url)
    return make_session_factory(make_engine(url))


def _analysis() -> Analysis:
    top3 = (LabelScore("monocyte", 0.8), LabelScore("lymphocyte", 0.15), LabelScore("ig", 0.05))
    cells = [Cell("wbc", (1, 2, 30, 40), False, "monocyte", 0.8, top3, False),
             Cell("rbc", (50, 50, 80, 80), True)]
    return Analysis("field", 640, 480, cells, [], rbc_count=1, platelet_count=0, quality=None,
                    model="m1", red_cell_model="rbc-centres-v2",
                    screen_model="hv-lite0-v10-abnormal")


def test_the_same_telegram_message_is_recorded_once(database_url: str) -> None:
    factory = _factory(database_url)
    received = Received(5, 9, "photo", "U1", None)
    first = record_submission(factory, SENDER, received, reply_message_id=10, sha256="a" * 64)
    again = record_submission(factory, SENDER, received, reply_message_id=11, sha256="a" * 64)
    assert first.created and not again.created
    assert first.submission_id == again.submission_id


def test_results_are_written_once_even_if_the_task_runs_twice(database_url: str) -> None:
    factory = _factory(database_url)
    model_id = register_model(factory, ModelCard(version="m1", classes=["a"], sha256="0" * 64),
                              "models/m1.safetensors")
    outcome = record_submission(factory, SENDER, Received(5, 1, "photo", "U", None),
                                reply_message_id=2, sha256="b" * 64)
    assert start_processing(factory, outcome.submission_id) == "b" * 64
    assert store_results(factory, outcome.submission_id, _analysis(), model_id)
    assert not store_results(factory, outcome.submission_id, _analysis(), model_id)
    assert start_processing(factory, outcome.submission_id) is None

    [delivery] = pending_deliveries(factory)
    assert delivery.status is SubmissionStatus.DONE and delivery.model_version == "m1"
    # Every model that made the result: the classifier, its blast screen, the red-cell finder.
    assert (delivery.screen_model, delivery.red_cell_model) == ("hv-lite0-v10-abnormal",
                                                                "rbc-centres-v2")
    assert [c.kind for c in delivery.cells] == ["wbc", "rbc"]
    assert delivery.classified[0].top3[0] == {"label": "monocyte", "confidence": 0.8}
    mark_delivered(factory, outcome.submission_id)
    assert pending_deliveries(factory) == []


def test_a_submission_left_unfinished_is_claimed_for_requeueing_once_per_period(
    database_url: str,
) -> None:
    factory = _factory(database_url)
    outcome = record_submission(factory, SENDER, Received(5, 3, "photo", "U", None),
                                reply_message_id=4, sha256="c" * 64)
    assert claim_stale(factory, timedelta(minutes=10)) == []
    with transaction(factory) as session:
        session.execute(update(Submission).values(updated_at=utcnow() - timedelta(hours=1)))
    assert claim_stale(factory, timedelta(minutes=10)) == [outcome.submission_id]
    assert claim_stale(factory, timedelta(minutes=10)) == []  # touched: not again at once


def test_a_photo_whose_analysis_never_finishes_is_given_up_after_its_attempts(
    database_url: str,
) -> None:
    factory = _factory(database_url)
    crashing, hanging = (record_submission(factory, SENDER, Received(5, n, "photo", None, None),
                                           reply_message_id=n + 1, sha256="d" * 64).submission_id
                         for n in (11, 13))
    # Each start is a worker that took the task and died (or hung) before finishing it.
    for _ in range(MAX_ATTEMPTS):
        assert start_processing(factory, crashing) is not None
        assert start_processing(factory, hanging) is not None
    assert start_processing(factory, crashing) is None  # redelivered once more: given up
    with transaction(factory) as session:
        session.execute(update(Submission).values(updated_at=utcnow() - timedelta(hours=1)))
    assert claim_stale(factory, timedelta(minutes=10)) == []  # the stale pass gives up too
    with factory() as session:
        rows = [session.get(Submission, i) for i in (crashing, hanging)]
        assert all(r is not None and r.status is SubmissionStatus.FAILED and r.error == GAVE_UP
                   for r in rows)
    # Its sender is told, once, like any other failure.
    told = [d.submission_id for d in pending_deliveries(factory)]
    assert sorted(told) == sorted([crashing, hanging])




def test_a_result_waits_for_its_acknowledgement_unless_the_bot_died_before_sending_it(
    database_url: str,
) -> None:
    factory = _factory(database_url)
    model_id = register_model(factory, ModelCard(version="m1", classes=["a"], sha256="0" * 64),
                              "models/m1.safetensors")
    outcome = record_submission(factory, SENDER, Received(5, 7, "photo", "U", None),
                                reply_message_id=None, sha256="d" * 64)
    start_processing(factory, outcome.submission_id)
    store_results(factory, outcome.submission_id, _analysis(), model_id)
    assert pending_deliveries(factory) == []  # the acknowledgement is on its way: edit it then
    with transaction(factory) as session:
        session.execute(update(Submission).values(created_at=utcnow() - timedelta(minutes=5)))
    [orphan] = pending_deliveries(factory)  # never acknowledged: answered with a new message
    assert orphan.reply_message_id is None


def _finished(factory, message_id: int) -> int:  # type: ignore[no-untyped-def]
    model_id = register_model(factory, ModelCard(version="m1", classes=["a"], sha256="0" * 64),
                              "models/m1.safetensors")
    outcome = record_submission(factory, SENDER, Received(5, message_id, "photo", "U", None),
                                reply_message_id=message_id + 1, sha256="e" * 64)
    start_processing(factory, outcome.submission_id)
    store_results(factory, outcome.submission_id, _analysis(), model_id)
    return outcome.submission_id


def _seconds_until(when: datetime) -> float:
    # SQLite hands back naive UTC datetimes; PostgreSQL aware ones.
    return (when.replace(tzinfo=when.tzinfo or UTC) - utcnow()).total_seconds()


def _due_now(factory) -> None:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        session.execute(update(Submission).values(next_delivery_at=utcnow()))


def test_a_failed_send_is_retried_later_with_growing_backoff_then_given_up(
        database_url: str) -> None:
    factory = _factory(database_url)
    submission_id = _finished(factory, 20)
    waits = []
    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        assert not delivery_failed(factory, submission_id, "TimedOut: timed out")
        assert pending_deliveries(factory) == []  # not before its next try
        with factory() as session:
            row = session.get(Submission, submission_id)
            assert row is not None and row.next_delivery_at is not None
            waits.append(_seconds_until(row.next_delivery_at))
        _due_now(factory)
        assert len(pending_deliveries(factory)) == 1
    assert waits[0] < waits[1] < waits[2] and max(waits) <= 600
    assert delivery_failed(factory, submission_id, "TimedOut: timed out")  # out of attempts
    assert pending_deliveries(factory) == []


def test_a_permanent_refusal_is_recorded_and_never_retried(database_url: str) -> None:
    factory = _factory(database_url)
    submission_id = _finished(factory, 30)
    assert delivery_failed(factory, submission_id, "Forbidden: bot was blocked by the user",
                           permanent=True)
    _due_now(factory)
    assert pending_deliveries(factory) == []
    with factory() as session:
        row = session.get(Submission, submission_id)
        assert row is not None and row.delivery_error == "Forbidden: bot was blocked by the user"


def test_flood_control_waits_at_least_what_telegram_asked(database_url: str) -> None:
    factory = _factory(database_url)
    submission_id = _finished(factory, 40)
    delivery_failed(factory, submission_id, "TimedOut: timed out", retry_after=120)
    with factory() as session:
        row = session.get(Submission, submission_id)
        assert row is not None and row.next_delivery_at is not None
        assert _seconds_until(row.next_delivery_at) > 110


def test_a_flood_deferral_is_not_a_failed_attempt(database_url: str) -> None:
    factory = _factory(database_url)
    submission_id = _finished(factory, 50)
    for _ in range(MAX_DELIVERY_ATTEMPTS + 3):
        defer_delivery(factory, submission_id, 30)
    assert pending_deliveries(factory) == []  # not due before Telegram's wait is over
    with factory() as session:
        row = session.get(Submission, submission_id)
        assert row is not None and row.delivery_attempts == 0 and row.delivery_error is None
        assert row.next_delivery_at is not None and 20 < _seconds_until(row.next_delivery_at) <= 30
    _due_now(factory)
    assert [d.submission_id for d in pending_deliveries(factory)] == [submission_id]


def _album_photo(factory, message_id: int, *, finished: bool) -> int:  # type: ignore[no-untyped-def]
    outcome = record_submission(factory, SENDER, Received(5, message_id, "photo", "U", None,
                                                          media_group_id="album-1"),
                                reply_message_id=99, sha256="e" * 64)
    if finished:
        _finish(factory, outcome.submission_id)
    return outcome.submission_id


def _finish(factory, submission_id: int) -> None:  # type: ignore[no-untyped-def]
    model_id = register_model(factory, ModelCard(version="m1", classes=["a"], sha256="0" * 64),
                              "models/m1.safetensors")
    start_processing(factory, submission_id)
    store_results(factory, submission_id, _analysis(), model_id)


def _arrived_earlier(factory, seconds: float) -> None:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        session.execute(update(Submission).values(
            created_at=utcnow() - timedelta(seconds=seconds)))


def test_an_album_is_due_only_whole_once_its_last_photo_is_finished_and_settled(
        database_url: str) -> None:
    factory = _factory(database_url)
    fast = _album_photo(factory, 60, finished=True)
    slow = _album_photo(factory, 61, finished=False)
    _arrived_earlier(factory, 60)
    assert pending_deliveries(factory) == []  # its slowest photo is still being analysed
    _finish(factory, slow)
    assert [d.submission_id for d in pending_deliveries(factory)] == [fast, slow]
    late = _album_photo(factory, 62, finished=True)  # a photo of the album still arriving
    assert pending_deliveries(factory) == []
    _arrived_earlier(factory, ALBUM_SETTLE.total_seconds() + 1)
    due = pending_deliveries(factory)
    assert [d.submission_id for d in due] == [fast, slow, late]
    assert {d.media_group_id for d in due} == {"album-1"}


def test_an_album_cut_by_the_page_limit_comes_whole(database_url: str) -> None:
    factory = _factory(database_url)
    single = _finished(factory, 70)
    album = [_album_photo(factory, 71 + n, finished=True) for n in range(3)]
    _arrived_earlier(factory, 60)
    assert [d.submission_id for d in pending_deliveries(factory, limit=2)] == [single, *album]
