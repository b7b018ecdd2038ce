"""A hard time limit on each photo's task.

Celery enforces its time limits only in the prefork pool; our workers run the solo or the
thread pool (one shared model, batched forward passes), where a task stuck in C code (a
decoder, a kernel) cannot be interrupted. Past the limit the worker process exits: the
deployment restarts it (compose: ``restart: unless-stopped``), the broker or the bot's requeue
pass hands the photo on, and after ``MAX_ATTEMPTS`` starts it is given up.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

EXIT_TIME_LIMIT = 75  # EX_TEMPFAIL: try again later (elsewhere)


def stop_this_worker(submission_id: int, seconds: float) -> None:
    log.critical("submission %s ran past the %g s time limit: stopping this worker so that "
                 "it is restarted and the photo handed on", submission_id, seconds)
    logging.shutdown()
    os._exit(EXIT_TIME_LIMIT)  # no clean shutdown: the stuck thread would never join


class Deadlines:
    def __init__(self, seconds: float,
                 on_expiry: Callable[[int, float], None] = stop_this_worker) -> None:
        self.seconds = seconds
        self._on_expiry = on_expiry

    @contextmanager
    def limit(self, submission_id: int) -> Iterator[None]:
        """Run the body; if it is still running after ``seconds``, call ``on_expiry``."""
        timer = threading.Timer(self.seconds, self._on_expiry, (submission_id, self.seconds))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
