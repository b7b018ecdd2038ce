"""The Celery application for inference workers."""

from __future__ import annotations

import logging
import threading

from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.submissions import record_failure
from core.tasks import CLASSIFY_TASK, RETRAIN_TASK, celery_config
from worker.runtime import WorkerRuntime
from worker.training import retrain

log = logging.getLogger(__name__)

MAX_RETRIES = 5


def create_worker_app(settings: Settings, runtime: WorkerRuntime | None = None) -> Celery:
    settings.ensure_dirs()
    app = Celery("hematovision", set_as_current=False)
    app.conf.update(celery_config(settings))
    runtime = runtime or WorkerRuntime(settings)

    @app.task(name=CLASSIFY_TASK, bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
    def classify(task: Task, submission_id: int) -> None:
        try:
            runtime.classify(submission_id)
        except OperationalError as exc:
            # The database blinked: try again later rather than lose the photo.
            log.warning("database unavailable for submission %s: %s", submission_id, exc)
            raise task.retry(exc=exc, countdown=min(2 ** task.request.retries, 30)) from exc
        except Exception as exc:
            log.exception("classification of submission %s failed", submission_id)
            record_failure(runtime.sessions, submission_id, f"{type(exc).__name__}: {exc}")

    @app.task(name=RETRAIN_TASK)  # type: ignore[untyped-decorator]
    def retrain_task(job_id: int) -> None:
        retrain(runtime, job_id)

    return app


def _warm_up(runtime: WorkerRuntime) -> None:
    try:
        runtime.warm_up()
    except Exception:
        # The database or the model file may not be ready yet: the first task loads the model.
        log.exception("the model could not be warmed up before the first task")


def run_worker(settings: Settings, *, loglevel: str = "INFO", hostname: str | None = None,
               training: bool = False) -> None:
    """An inference worker, or (``training``) the worker that serves retraining jobs.

    Inference tasks run one at a time (solo pool), or with ``worker_concurrency`` > 1 in a
    thread pool whose tasks share the model through dynamic batching. A training worker runs
    one job at a time.
    """
    settings.ensure_dirs()
    runtime = WorkerRuntime(settings)
    if not training:
        # Beside Celery's own start-up: a task that comes first waits for the model (the
        # runtime's lock) as it would have loading it itself.
        threading.Thread(target=_warm_up, args=(runtime,), name="warm-up", daemon=True).start()
    app = create_worker_app(settings, runtime)
    queue = settings.training_queue if training else settings.classify_queue
    concurrency = 1 if training else max(1, settings.worker_concurrency)
    pool = "threads" if concurrency > 1 else "solo"
    argv = ["worker", f"--loglevel={loglevel}", f"--pool={pool}",
            f"--concurrency={concurrency}", "-Q", queue]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)
