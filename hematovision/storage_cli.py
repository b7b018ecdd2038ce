"""``hematovision storage migrate`` and ``hematovision health``: the operator's side of storage."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from core.db.session import make_engine, make_session_factory
from core.health import health
from core.retention import purge_images
from core.settings import Settings
from core.storage import DatabaseBlobs, blob_store
from core.storage.migration import migrate_to_shared


def run_migrate(settings: Settings) -> int:
    """Copy the local images folder and every registered model into the database store."""
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    report = migrate_to_shared(settings.resolved_storage_dir, sessions, DatabaseBlobs(sessions),
                               lambda line: print(line, flush=True))
    for line in report.lines():
        print(line)
    if settings.storage_backend != "database":
        print("now set HV_STORAGE_BACKEND=database for every process")
    return 0 if report.ok else 1


def run_purge(settings: Settings, days: int | None, dry_run: bool) -> int:
    """Apply the retention policy once (run it daily, e.g. from cron)."""
    days = days if days is not None else settings.retention_days
    if days is None or days < 1:
        print("no retention period: set HV_RETENTION_DAYS or pass --days N (N >= 1)",
              file=sys.stderr)
        return 2
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    report = purge_images(sessions, blob_store(settings, sessions), timedelta(days=days),
                          datetime.now(UTC), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} the photos of {report.photos} submission(s) older than {days} days "
          f"({report.files_deleted} file(s)); kept {report.kept_open_case} in open cases and "
          f"{report.kept_expert_labels} with expert labels")
    return 0


def run_health(settings: Settings) -> int:
    """Exit 0 when this configuration reaches its database, broker and file store."""
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    checks = health(settings, sessions, blob_store(settings, sessions))
    for check in checks:
        print(f"{check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail})",
              file=sys.stdout if check.ok else sys.stderr)
    return 0 if all(check.ok for check in checks) else 1
