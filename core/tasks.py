"""Task contracts shared by the bot (producer) and the worker (consumer).

The bot enqueues by name with these payloads; it never imports worker code.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from core.settings import Settings

CLASSIFY_TASK = "hematovision.classify"
RETRAIN_TASK = "hematovision.retrain"


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.resolved_broker_url
    transport_options: dict[str, Any] = {}
    if broker.startswith(("redis", "rediss")):
        transport_options = {"visibility_timeout": settings.broker_visibility_timeout}
    elif broker.startswith("filesystem"):
        folder = settings.broker_folder
        transport_options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # kombu's default is "control" in the working directory: keep it with the rest.
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return {
        "broker_url": broker,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        # Results live in our database, not in Celery's result backend.
        "task_ignore_result": True,
        # Ack only after the task body finished, so a crashed worker's task is redelivered;
        # the task is idempotent, which makes redelivery safe.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.classify_queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
    }


class TaskQueue:
    """The producer side: enqueue work by task name."""

    def __init__(self, settings: Settings) -> None:
        self._queue = settings.classify_queue
        self._training_queue = settings.training_queue
        self._app = Celery("hematovision-producer", set_as_current=False)
        self._app.conf.update(celery_config(settings))

    def enqueue_classify(self, submission_id: int) -> None:
        self._app.send_task(
            CLASSIFY_TASK, kwargs={"submission_id": submission_id}, queue=self._queue
        )

    def enqueue_retrain(self, job_id: int) -> None:
        self._app.send_task(
            RETRAIN_TASK, kwargs={"job_id": job_id}, queue=self._training_queue
        )

    def close(self) -> None:
        self._app.close()
