"""Is this process's configuration able to work: the database, the broker and the file store."""

from __future__ import annotations

from dataclasses import dataclass

from kombu.connection import Connection
from sqlalchemy import text

from core.db.session import SessionFactory
from core.settings import Settings
from core.storage.blobs import BlobStore
from core.submissions import MAX_ATTEMPTS, given_up, stored_bytes_total
from core.tasks import celery_config


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _database(sessions: SessionFactory) -> Check:
    try:
        with sessions() as session:
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return Check("database", True, f"schema {revision}")
    except Exception as exc:  # whatever fails is the answer, not a crash
        return Check("database", False, f"{type(exc).__name__}: {exc}")


def _broker(settings: Settings, timeout: float) -> Check:
    config = celery_config(settings)
    try:
        with Connection(config["broker_url"], connect_timeout=timeout,  # type: ignore[no-untyped-call]
                        transport_options=config["broker_transport_options"]) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return Check("broker", True, "reachable")
    except Exception as exc:
        return Check("broker", False, f"{type(exc).__name__}: {exc}")


def _store(blobs: BlobStore) -> Check:
    try:
        blobs.exists("0" * 64)  # a read that reaches the backend
        return Check("storage", True, "shared (database)" if blobs.shared else "local folder")
    except Exception as exc:
        return Check("storage", False, f"{type(exc).__name__}: {exc}")


def _quota(settings: Settings, sessions: SessionFactory) -> Check:
    try:
        used = stored_bytes_total(sessions)
    except Exception as exc:
        return Check("storage quota", False, f"{type(exc).__name__}: {exc}")
    quota = settings.storage_quota_bytes
    if quota is None:
        return Check("storage quota", True, f"{used / 1e6:.0f} MB of uploads kept; no quota")
    detail = f"{used / 1e6:.0f} MB of {quota / 1e6:.0f} MB ({100 * used / quota:.0f}%)"
    if used >= quota:
        detail += ": new photos are refused; run `hematovision purge` or raise the quota"
    return Check("storage quota", used < quota, detail)


def _given_up(sessions: SessionFactory) -> Check:
    # Listed for an admin to look at; not a failure of this process (a health check that
    # failed on them would restart healthy containers).
    try:
        total, latest = given_up(sessions)
    except Exception as exc:
        return Check("given up", False, f"{type(exc).__name__}: {exc}")
    if not total:
        return Check("given up", True, "no photo was given up")
    return Check("given up", True, f"{total} photo(s) given up after {MAX_ATTEMPTS} unfinished "
                                   f"analyses; latest submission ids: "
                                   f"{', '.join(map(str, latest))}")


def health(settings: Settings, sessions: SessionFactory, blobs: BlobStore,
           timeout: float = 5.0) -> list[Check]:
    return [_database(sessions), _broker(settings, timeout), _store(blobs),
            _quota(settings, sessions), _given_up(sessions)]
