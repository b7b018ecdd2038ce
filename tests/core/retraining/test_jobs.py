"""Training jobs: one at a time, started once, progress queued for the bot, lost jobs superseded."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.access import AccessDenied
from core.db.models import TrainingJob, utcnow
from core.db.notify import ResultListener
from core.db.session import transaction
from core.enums import JobStatus, Role
from core.retraining import jobs
from tests.core.conftest import Lab


def test_a_second_job_is_refused_while_one_runs(lab: Lab) -> None:
    first = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    with pytest.raises(jobs.JobAlreadyRunning) as refused:
        jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    assert refused.value.job_id == first
    jobs.finish(lab.sessions, first, outcome={"promoted": False})
    assert jobs.request_job(lab.sessions, lab.admin, chat_id=1) == first + 1


def test_only_admins_request_jobs(lab: Lab) -> None:
    with pytest.raises(AccessDenied):
        jobs.request_job(lab.sessions, lab.member(40), chat_id=40)


def test_a_redelivered_task_does_not_train_twice(lab: Lab) -> None:
    job = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    assert jobs.start_job(lab.sessions, job)
    assert not jobs.start_job(lab.sessions, job)


def test_progress_is_reported_to_the_bot_once_per_change(lab: Lab) -> None:
    job = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    assert jobs.pending_reports(lab.sessions) == []  # no message to edit yet
    jobs.attach_message(lab.sessions, job, 55)
    jobs.start_job(lab.sessions, job)
    jobs.report(lab.sessions, job, "training", {"epoch": 1})
    [report] = jobs.pending_reports(lab.sessions)
    assert (report.message_id, report.stage, report.progress) == (55, "training", {"epoch": 1})
    jobs.mark_reported(lab.sessions, job, report.seq)
    assert jobs.pending_reports(lab.sessions) == []
    jobs.finish(lab.sessions, job, error="boom")
    [final] = jobs.pending_reports(lab.sessions)
    assert final.status is JobStatus.FAILED and final.error == "boom"


def test_a_job_whose_worker_went_silent_is_superseded(lab: Lab) -> None:
    job = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    jobs.start_job(lab.sessions, job)
    with transaction(lab.sessions) as session:
        session.execute(update(TrainingJob).values(heartbeat_at=utcnow() - timedelta(hours=1)))
    replacement = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
    with lab.sessions() as session:
        lost = session.get(TrainingJob, job)
        assert lost is not None and lost.status is JobStatus.FAILED
        assert "stopped reporting" in (lost.error or "")
    assert replacement != job


def test_progress_and_the_end_of_a_job_wake_the_bot_at_once(lab: Lab) -> None:
    engine = lab.sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("NOTIFY exists on PostgreSQL only; on SQLite the bot's poll relays progress")
    woken = threading.Semaphore(0)
    listener = ResultListener(engine.url.render_as_string(hide_password=False), woken.release,
                              retry_seconds=0.2).start()
    try:
        assert listener.listening.wait(10)
        assert woken.acquire(timeout=10)  # the catch-up call made on connecting
        job = jobs.request_job(lab.sessions, lab.admin, chat_id=1)
        jobs.start_job(lab.sessions, job)
        jobs.report(lab.sessions, job, "training", {"epoch": 1})
        assert woken.acquire(timeout=10)
        jobs.finish(lab.sessions, job, outcome={"promoted": False})
        assert woken.acquire(timeout=10)
        assert not woken.acquire(timeout=0.5)  # one wake-up per change, nothing more
    finally:
        listener.stop()


def test_an_admin_of_one_laboratory_adapts_it_but_retrains_nobody_elses_model(lab: Lab) -> None:
    admin_a = lab.member(41, Role.ADMIN, group="lab-a")
    with pytest.raises(AccessDenied, match="laboratory-wide owner"):
        jobs.request_job(lab.sessions, admin_a, chat_id=41)
    assert jobs.request_job(lab.sessions, admin_a, chat_id=41, for_group=True) > 0
