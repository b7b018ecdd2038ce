"""The states a row can be in: shared by the schema, the domain and the adapters, so that nothing
outside the database layer imports the schema to name them."""

from __future__ import annotations

import enum


class SubmissionStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


FINISHED_STATUSES = (SubmissionStatus.DONE, SubmissionStatus.FAILED, SubmissionStatus.REJECTED)


class Role(enum.StrEnum):
    PENDING = "pending"
    DENIED = "denied"
    USER = "user"
    REVIEWER = "reviewer"  # may confirm and correct labels
    ADMIN = "admin"  # administers their own laboratory (group)
    OWNER = "owner"  # administers every laboratory: the configured admins (HV_ADMIN_IDS)


APPROVED_ROLES = (Role.USER, Role.REVIEWER, Role.ADMIN, Role.OWNER)
ADMIN_ROLES = (Role.ADMIN, Role.OWNER)


class ModelStatus(enum.StrEnum):
    ACTIVE = "active"
    CANDIDATE = "candidate"  # trained, not serving (failed the gate, or not yet promoted)
    RETIRED = "retired"  # served before, replaced by a promotion
    ROLLED_BACK = "rolled_back"  # taken out of service by /rollback; skipped by later rollbacks
    DISCARDED = "discarded"  # a candidate an admin turned down; never promoted


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
