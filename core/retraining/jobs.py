"""Training jobs in the database: one at a time, progress recorded for the bot to relay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.access import AccessDenied, Member
from core.db.models import Group, TrainingJob, utcnow
from core.db.notify import announce_result
from core.db.session import SessionFactory, transaction
from core.enums import JobStatus

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)
# A running job reports at least every few seconds; silence this long means its worker died.
LOST_AFTER = timedelta(minutes=15)


class JobAlreadyRunning(Exception):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"training job {job_id} is still running")
        self.job_id = job_id


@dataclass(frozen=True)
class JobReport:
    job_id: int
    chat_id: int
    message_id: int
    status: JobStatus
    stage: str
    progress: dict[str, Any]
    seq: int
    candidate_version: str | None
    outcome: dict[str, Any] | None
    error: str | None


class NoLaboratory(Exception):
    """An adaptation was asked for by an admin who belongs to no group."""


def request_job(factory: SessionFactory, admin: Member, chat_id: int,
                for_group: bool = False) -> int:
    """Queue a laboratory-wide retraining, or with ``for_group`` an adaptation to the admin's
    own group's expert cells."""
    if not admin.is_admin:
        raise AccessDenied("only admins start retraining")
    if not for_group and not admin.is_owner:
        # Its candidate would serve every laboratory.
        raise AccessDenied("only a laboratory-wide owner retrains the model every laboratory "
                           "uses; /adapt adapts your laboratory's own")
    if for_group and admin.group_id is None:
        raise NoLaboratory("you belong to no laboratory group")
    with transaction(factory) as session:
        running = session.scalar(select(TrainingJob).where(
            TrainingJob.status.in_(UNFINISHED)).with_for_update())
        if running is not None:
            if not _lost(running):
                raise JobAlreadyRunning(running.id)
            running.status = JobStatus.FAILED
            running.error = "its worker stopped reporting (lost); superseded by a new job"
            running.finished_at = utcnow()
            running.progress_seq += 1
        job = TrainingJob(requested_by=admin.user_id, chat_id=chat_id, status=JobStatus.QUEUED,
                          stage="queued", progress={}, progress_seq=0, reported_seq=0,
                          group_id=admin.group_id if for_group else None)
        session.add(job)
        session.flush()
        return job.id


def _lost(job: TrainingJob) -> bool:
    last = job.heartbeat_at or job.created_at
    if last.tzinfo is None:  # SQLite returns naive datetimes
        last = last.replace(tzinfo=utcnow().tzinfo)
    return utcnow() - last > LOST_AFTER


def attach_message(factory: SessionFactory, job_id: int, message_id: int) -> None:
    with transaction(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None:
            job.message_id = message_id


def start_job(factory: SessionFactory, job_id: int) -> bool:
    """Mark the job running; False when it is running elsewhere or has ended.

    The broker may deliver a long task twice (visibility timeout, a restarted worker): only the
    first delivery trains.
    """
    with transaction(factory) as session:
        job = session.get(TrainingJob, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.QUEUED:
            return False
        job.status = JobStatus.RUNNING
        job.started_at = job.heartbeat_at = utcnow()
        return True


def job_group(factory: SessionFactory, job_id: int) -> tuple[int, str] | None:
    """The group an adaptation job is for (id, name); None for a laboratory-wide retraining."""
    with factory() as session:
        row = session.execute(select(Group.id, Group.name)
                              .join(TrainingJob, TrainingJob.group_id == Group.id)
                              .where(TrainingJob.id == job_id)).first()
        return (row[0], row[1]) if row else None


def report(factory: SessionFactory, job_id: int, stage: str, progress: dict[str, Any]) -> None:
    with transaction(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None:
            job.stage = stage[:64]
            job.progress = progress
            job.progress_seq += 1
            job.heartbeat_at = utcnow()
            announce_result(session)


def finish(factory: SessionFactory, job_id: int, *, outcome: dict[str, Any] | None = None,
           candidate_version: str | None = None, error: str | None = None) -> None:
    with transaction(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            return
        announce_result(session)
        job.status = JobStatus.FAILED if error else JobStatus.DONE
        job.stage = "failed" if error else "done"
        job.outcome = outcome
        job.candidate_version = candidate_version
        job.error = error[:2000] if error else None
        job.finished_at = utcnow()
        job.progress_seq += 1


def job_candidate(factory: SessionFactory, job_id: int) -> str:
    """The candidate version a finished job made (KeyError if it made none)."""
    with factory() as session:
        job = session.get(TrainingJob, job_id)
        if job is None or job.candidate_version is None:
            raise KeyError(f"job {job_id} made no candidate")
        return job.candidate_version


def pending_reports(factory: SessionFactory) -> list[JobReport]:
    with factory() as session:
        jobs = session.scalars(select(TrainingJob).where(
            TrainingJob.message_id.is_not(None),
            TrainingJob.progress_seq > TrainingJob.reported_seq)).all()
        return [JobReport(j.id, j.chat_id, j.message_id or 0, j.status, j.stage,
                          j.progress or {}, j.progress_seq, j.candidate_version, j.outcome,
                          j.error) for j in jobs]


def mark_reported(factory: SessionFactory, job_id: int, seq: int) -> None:
    with transaction(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None and job.reported_seq < seq:
            job.reported_seq = seq
