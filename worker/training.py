"""The retraining task's adapter: settings in, progress out to the job row (relayed by the bot)."""

from __future__ import annotations

import logging
import time
from typing import Any

from core.retraining import jobs
from core.retraining.config import RetrainConfig
from core.retraining.laboratory import run_adaptation
from core.retraining.run import RetrainSetup, run_retraining
from worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)
REPORT_EVERY_SECONDS = 3.0


def retrain(runtime: WorkerRuntime, job_id: int) -> None:
    sessions, settings = runtime.sessions, runtime.settings
    if not jobs.start_job(sessions, job_id):
        log.info("training job %s already ended; nothing to do", job_id)
        return
    last: dict[str, Any] = {"stage": None, "at": 0.0}

    def sink(stage: str, details: dict[str, Any]) -> None:
        # Stage changes always reach the admin; step-by-step progress at most every few seconds.
        now = time.monotonic()
        if stage == last["stage"] and now - last["at"] < REPORT_EVERY_SECONDS:
            return
        last.update(stage=stage, at=now)
        log.info("training job %s: %s %s", job_id, stage, details)
        jobs.report(sessions, job_id, stage, details)

    try:
        config = RetrainConfig.from_file(settings.retrain_config)
        base_data = config.base_data or settings.training_data_dir
        if base_data is None:
            raise ValueError("no base training data: set HV_TRAINING_DATA_DIR (or base_data in "
                             "HV_RETRAIN_CONFIG) to a folder with train/, val/ and test/")
        setup = RetrainSetup(sessions, runtime.store, runtime.models, settings.models_dir,
                             settings.cache_dir, base_data, config)
        group = jobs.job_group(sessions, job_id)
        outcome = (run_adaptation(setup, job_id, *group, sink) if group is not None
                   else run_retraining(setup, job_id, sink))
    except Exception as exc:
        log.exception("training job %s failed", job_id)
        jobs.finish(sessions, job_id, error=f"{type(exc).__name__}: {exc}")
        return
    jobs.finish(sessions, job_id, outcome=outcome.to_dict(), candidate_version=outcome.version)
