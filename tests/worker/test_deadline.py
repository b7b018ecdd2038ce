"""The hard time limit on a photo's task: it fires for a task that outlasts it, never for one
that finishes in time."""

from __future__ import annotations

import threading
import time

from worker.deadline import Deadlines


def test_a_task_past_its_limit_is_reported_with_its_submission() -> None:
    expired: list[tuple[int, float]] = []
    fired = threading.Event()

    def record(submission_id: int, seconds: float) -> None:
        expired.append((submission_id, seconds))
        fired.set()

    with Deadlines(0.05, record).limit(7):
        assert fired.wait(5)
    assert expired == [(7, 0.05)]


def test_a_task_that_finishes_in_time_is_left_alone() -> None:
    expired: list[int] = []
    with Deadlines(0.2, lambda submission_id, _s: expired.append(submission_id)).limit(8):
        pass
    time.sleep(0.4)
    assert expired == []
