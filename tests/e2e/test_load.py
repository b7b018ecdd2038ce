"""Many users at once, two workers: every photo is answered, none twice (a CI-sized load run;
``python -m benchmarks.load`` runs 50 users x 10 photos and reports latency)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from devkit.harness import is_result, running_stack
from tests.conftest import fresh_postgres_database, pbc_fixtures

USERS, PHOTOS = 10, 3
CELLS = list(pbc_fixtures().values())


def test_concurrent_users_with_two_fresh_workers_are_each_answered_once(
    redis_url: str, tmp_path: Path,
) -> None:
    with fresh_postgres_database() as url, running_stack(tmp_path, url, redis_url) as stack:
        # Both load the model and register it at the same time; the second runs four tasks at
        # once in threads whose cells share forward passes (dynamic batching).
        stack.start_worker("second", env={"HV_WORKER_CONCURRENCY": "4"})
        users = [stack.new_user() for _ in range(USERS)]
        failures: list[str] = []

        def user_session(user: int) -> None:
            photos = [CELLS[(user + n) % len(CELLS)].read_bytes() for n in range(PHOTOS)]
            try:
                stack.send_and_time(user, photos, timeout=120)
            except RuntimeError as unanswered:
                failures.append(str(unanswered))

        threads = [threading.Thread(target=user_session, args=(u,)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, f"{failures}\n{stack.logs()}"
        stack.standin.wait_for(users[0], PHOTOS + 1, 2, is_result)  # a moment for duplicates
        for user in users:
            assert len(stack.results(user)) == PHOTOS
            rows = stack.delivered_submissions(user)
            assert len(rows) == PHOTOS and all(r.status.value == "done" for r in rows)
        for name, child in stack.children.items():
            assert child.process.poll() is None, f"{name} died"


pytestmark = pytest.mark.timeout(600)
