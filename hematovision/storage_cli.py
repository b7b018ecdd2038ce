"""``hematovision storage migrate`` and ``hematovision health``: the operator's side of storage."""

from __future__ import annotations

import sys

from core.db.session import make_engine, make_session_factory
from core.health import health
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


def run_health(settings: Settings) -> int:
    """Exit 0 when this configuration reaches its database, broker and file store."""
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    checks = health(settings, sessions, blob_store(settings, sessions))
    for check in checks:
        print(f"{check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail})",
              file=sys.stdout if check.ok else sys.stderr)
    return 0 if all(check.ok for check in checks) else 1
