"""Nothing lost under real faults: killed workers, a restarted Redis, a database outage, an
unreliable Telegram. Every process, server and connection here is real.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import CellResult, Submission
from core.db.session import make_engine, make_session_factory
from core.enums import Role, SubmissionStatus
from core.submissions import MAX_ATTEMPTS
from devkit.harness import Stack, running_stack
from devkit.standin import Fault
from tests.conftest import PG_ADMIN_URL, fresh_postgres_database, pbc_fixtures
from tests.faults import RedisServer, TcpLink
from worker.deadline import EXIT_TIME_LIMIT

CELLS = pbc_fixtures()
# Short broker and requeue timings so that recovery happens within a test's patience.
FAST_RECOVERY = {"HV_BROKER_VISIBILITY_TIMEOUT": "4", "HV_REQUEUE_AFTER_SECONDS": "4",
                 "HV_DB_SLOW_NOTICE_SECONDS": "2"}


@pytest.fixture(scope="module")
def aof_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis with the persistence we require in deployment (AOF, fsync always)."""
    server = RedisServer(tmp_path_factory.mktemp("redis-aof"), appendonly=True).start()
    yield server
    server.stop()


@contextlib.contextmanager
def stack_on(root: Path, broker: str, database_url: str | None = None,
             **env: str) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        url = database_url or stack.enter_context(fresh_postgres_database())
        yield stack.enter_context(running_stack(root, url, broker, {**FAST_RECOVERY, **env}))


def wait_until(condition, timeout: float, stack: Stack, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{stack.logs()}"
        time.sleep(0.02)


def all_answered_once(stack: Stack, users: list[int], timeout: float = 120) -> list[Submission]:
    wait_until(lambda: all(stack.results(u) for u in users), timeout, stack, "every result")
    time.sleep(1.5)  # a duplicate would show up now
    rows = []
    for user in users:
        assert len(stack.results(user)) == 1, f"user {user}: {stack.results(user)}"
        [row] = stack.delivered_submissions(user)
        assert row.status is SubmissionStatus.DONE and len(row.cells) == 1
        rows.append(row)
    return rows


def processing(stack: Stack, user: int) -> bool:
    rows = stack.submissions(user)
    return bool(rows) and rows[0].status is SubmissionStatus.PROCESSING


def test_a_worker_killed_mid_task_is_redelivered_and_answered_once(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    with stack_on(tmp_path, aof_redis.url) as stack:
        user = stack.new_user()
        stack.standin.send_photo(user, CELLS["eosinophil"].read_bytes())
        # A fresh worker loads its model inside the first task: kill it there.
        wait_until(lambda: processing(stack, user), 60, stack, "the task to start")
        stack.children.pop("worker").kill()
        stack.start_worker("replacement")
        [row] = all_answered_once(stack, [user])
        assert row.attempts == 2  # the same submission, delivered to a second worker


def test_with_two_workers_the_survivor_finishes_a_killed_workers_task(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    with stack_on(tmp_path, aof_redis.url) as stack:
        stack.start_worker("second")
        user = stack.new_user()
        stack.standin.send_photo(user, CELLS["monocyte"].read_bytes())
        wait_until(lambda: processing(stack, user), 60, stack, "the task to start")
        [busy] = [name for name, child in stack.children.items()
                  if "hematovision.classify" in child.log() and "received" in child.log()]
        stack.children.pop(busy).kill()
        [row] = all_answered_once(stack, [user])
        assert row.attempts == 2


def test_photos_queued_and_in_flight_survive_a_redis_crash(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    with stack_on(tmp_path, aof_redis.url) as stack:
        queued = [stack.new_user() for _ in range(3)]
        stack.stop("worker")
        for user in queued:
            stack.standin.send_photo(user, CELLS["neutrophil"].read_bytes())
        wait_until(lambda: all(stack.submissions(u) for u in queued), 30, stack, "the records")
        aof_redis.restart()  # SIGKILL: a crash, not a clean shutdown
        stack.start_worker()
        all_answered_once(stack, queued)

        in_flight = [stack.new_user() for _ in range(3)]
        for user in in_flight:
            stack.standin.send_photo(user, CELLS["lymphocyte"].read_bytes())
        aof_redis.restart(down_for=2.0)
        late = stack.new_user()  # sent right after the restart: bot and worker reconnect
        stack.standin.send_photo(late, CELLS["basophil"].read_bytes())
        all_answered_once(stack, [*in_flight, late])


def test_messages_lost_by_a_redis_without_persistence_are_sent_again(tmp_path: Path) -> None:
    volatile = RedisServer(tmp_path / "redis", appendonly=False).start()
    try:
        with stack_on(tmp_path / "stack", volatile.url) as stack:
            users = [stack.new_user() for _ in range(2)]
            stack.stop("worker")
            for user in users:
                stack.standin.send_photo(user, CELLS["ig"].read_bytes())
            wait_until(lambda: all(stack.submissions(u) for u in users), 30, stack, "records")
            volatile.restart()  # every queued message is gone
            stack.start_worker()
            all_answered_once(stack, users)  # the bot's requeue pass found them in the database
    finally:
        volatile.stop()


@contextlib.contextmanager
def stack_behind_a_link(root: Path, broker: str) -> Iterator[tuple[Stack, TcpLink]]:
    """A stack whose processes reach PostgreSQL through a link the test can cut; the test
    itself reads the database directly, past the faulty link."""
    host, port = PG_ADMIN_URL.rsplit("@", 1)[1].split("/")[0].split(":")
    link = TcpLink(host, int(port))
    try:
        with fresh_postgres_database() as direct:
            through_link = direct.replace(f"{host}:{port}", f"127.0.0.1:{link.port}")
            with stack_on(root, broker, through_link) as stack:
                stack.sessions.kw["bind"].dispose()
                stack.sessions = make_session_factory(make_engine(direct))
                yield stack, link
    finally:
        link.close()


def test_a_database_outage_delays_answers_but_loses_nothing(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    with stack_behind_a_link(tmp_path, aof_redis.url) as (stack, link):
        before, during = stack.new_user(), stack.new_user()
        stack.standin.send_photo(before, CELLS["platelet"].read_bytes())
        all_answered_once(stack, [before])

        link.cut()
        stack.standin.send_photo(during, CELLS["erythroblast"].read_bytes())
        busy = stack.standin.wait_for(during, 1, 30)
        assert "database is not answering" in (busy[0].text or ""), stack.logs()
        time.sleep(3)
        link.restore()
        all_answered_once(stack, [during])
        for name, child in stack.children.items():
            assert child.process.poll() is None, f"{name} died"


def test_a_button_pressed_while_the_database_is_down_is_answered_after_the_retry(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    with stack_behind_a_link(tmp_path, aof_redis.url) as (stack, link):
        reviewer = stack.new_user(role=Role.REVIEWER)
        stack.standin.send_photo(reviewer, CELLS["eosinophil"].read_bytes())
        [submission] = all_answered_once(stack, [reviewer])
        result = stack.result_for(reviewer)
        seen = len(stack.standin.wait_for(reviewer, 0, 0))

        link.cut()
        stack.standin.press_button(reviewer, result.message_id, f"ok:{submission.id}")
        [busy] = stack.standin.wait_for(reviewer, seen + 1, 30)[seen:]
        assert "database is not answering" in (busy.text or ""), stack.logs()
        assert busy.method == "sendMessage"  # the press itself is still unanswered
        time.sleep(1)
        link.restore()

        answered = stack.standin.wait_for(
            reviewer, 1, 60, predicate=lambda a: a.method == "answerCallbackQuery")
        assert answered, f"the press was never answered:\n{stack.logs()}"
        assert "label(s) of this result confirmed by" in (answered[0].text or "")
        with stack.sessions() as session:
            cell = session.scalars(select(CellResult).where(
                CellResult.submission_id == submission.id)).one()
            assert cell.expert_label == cell.label


@pytest.fixture(scope="module")
def telegram_stack(aof_redis: RedisServer,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_on(tmp_path_factory.mktemp("telegram"), aof_redis.url) as stack:
        yield stack


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        (Fault(status=429, retry_after=1, times=2), "rate limited with retry_after"),
        (Fault(status=502, times=3), "bad gateway"),
        (Fault(status=200, delay=7.0), "slower than the client's timeout"),
    ],
)
def test_telegram_errors_delay_a_reply_but_deliver_it_once(
    telegram_stack: Stack, fault: Fault, why: str,
) -> None:
    stack = telegram_stack
    user = stack.new_user()
    planned = fault.times
    calls_before = stack.standin.api.state.calls.count("editMessageText")
    stack.standin.fail_next("editMessageText", fault)
    stack.standin.send_photo(user, CELLS["neutrophil"].read_bytes())
    [row] = all_answered_once(stack, [user])
    assert row.delivered_at is not None, why
    assert not stack.standin.api.state.faults["editMessageText"]  # every planned fault was hit
    # Each failure was followed by a retry of the same edit.
    assert stack.standin.api.state.calls.count("editMessageText") - calls_before >= planned + 1


def test_a_photo_that_outlasts_the_time_limit_stops_its_worker_and_is_given_up_at_last(
    aof_redis: RedisServer, tmp_path: Path,
) -> None:
    # A limit no task can meet (a fresh worker loads its model inside the first task).
    with stack_on(tmp_path, aof_redis.url, HV_TASK_TIME_LIMIT_SECONDS="0.05") as stack:
        user = stack.new_user()
        stack.standin.send_photo(user, CELLS["eosinophil"].read_bytes())
        name = "worker"
        # Each start is recorded before the limit applies, so every stop is an attempt.
        for attempt in range(1, MAX_ATTEMPTS + 1):
            worker = stack.children.pop(name)
            wait_until(lambda w=worker: w.process.poll() is not None, 90, stack,
                       f"worker {attempt} to stop at the limit")
            assert worker.process.returncode == EXIT_TIME_LIMIT
            assert "ran past the 0.05 s time limit" in worker.log()
            assert stack.submissions(user)[0].attempts == attempt
            name = f"worker-{attempt + 1}"
            stack.start_worker(name)
        # The next worker to receive it gives it up: the sender is told once.
        told = stack.result_for(user, timeout=90)
        assert "stopped trying" in (told.text or ""), told.text
        [row] = stack.submissions(user)
        assert row.status is SubmissionStatus.FAILED and row.attempts == MAX_ATTEMPTS
        assert stack.children[name].process.poll() is None  # this worker lives on
