"""Move a one-host deployment's files into the shared store: idempotent, every hash verified."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from core.db.models import ModelVersion
from core.db.session import SessionFactory
from core.storage.blobs import KINDS, BlobStore, Kind, sha256_of

_SUFFIXES = {f".{kind}": kind for kind in KINDS}


@dataclass
class MigrationReport:
    copied: int = 0
    already_there: int = 0
    # Files whose bytes do not match their name, and versions whose weights are nowhere here:
    # left as they are, listed for an administrator.
    corrupt: list[str] = field(default_factory=list)
    missing_models: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"{self.copied} file(s) copied and verified, {self.already_there} already "
                 "in the shared store"]
        lines += [f"corrupt, not copied: {path}" for path in self.corrupt]
        lines += [f"model {version}: weights not found on this host nor in the shared store"
                  for version in self.missing_models]
        return lines

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing_models


def _already_there(sha256: str, shared: BlobStore, report: MigrationReport) -> bool:
    if not shared.exists(sha256):
        return False
    shared.get(sha256)  # verified: a damaged copy in the store raises, never passes
    report.already_there += 1
    return True


def _copy(data: bytes, sha256: str, kind: Kind, shared: BlobStore,
          report: MigrationReport) -> None:
    shared.put(data, kind)
    shared.get(sha256)
    report.copied += 1


def migrate_to_shared(images_dir: Path, sessions: SessionFactory, shared: BlobStore,
                      progress: Callable[[str], None] = lambda _line: None) -> MigrationReport:
    """Copy every stored image under ``images_dir`` and every registered version's weights."""
    report = MigrationReport()
    files = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
    for number, path in enumerate(files, 1):
        data = path.read_bytes()
        if sha256_of(data) != path.stem:
            report.corrupt.append(str(path))
        elif not _already_there(path.stem, shared, report):
            _copy(data, path.stem, _SUFFIXES[path.suffix], shared, report)
        if number % 100 == 0 or number == len(files):
            progress(f"images: {number}/{len(files)}")
    with sessions() as session:
        versions = session.execute(select(ModelVersion.version, ModelVersion.sha256,
                                          ModelVersion.path)).all()
    for version, sha256, path_text in versions:
        path = Path(path_text)
        if _already_there(sha256, shared, report):
            continue
        if not path.is_file():
            report.missing_models.append(version)
        elif sha256_of(data := path.read_bytes()) != sha256:
            report.corrupt.append(str(path))
        else:
            _copy(data, sha256, "safetensors", shared, report)
    progress(f"models: {len(versions)}")
    return report
