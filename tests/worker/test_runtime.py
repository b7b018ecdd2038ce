"""The worker serves the registry's active model and offers a newly shipped one to admins."""

from __future__ import annotations

from pathlib import Path

from core.db import migrate
from core.db.models import ModelStatus
from core.model.artifact import read_card
from core.registry import list_models, register_model
from core.settings import DEFAULT_MODEL_PATH, PROJECT_ROOT, Settings
from worker.runtime import WorkerRuntime

PREVIOUS = PROJECT_ROOT / "models" / "pbc-lite0-ft-v4a.safetensors"


def runtime_on(sqlite_url: str, tmp_path: Path) -> WorkerRuntime:
    migrate.upgrade(sqlite_url)
    return WorkerRuntime(Settings(data_dir=tmp_path, database_url=sqlite_url,
                                  torchscript=False, red_cell_model_path=None))


def test_an_empty_registry_is_seeded_with_the_shipped_model(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    runtime = runtime_on(sqlite_url, tmp_path)
    ref, classifier = runtime.current_model()
    assert ref.version == classifier.version == read_card(DEFAULT_MODEL_PATH).version


def test_a_newly_shipped_model_waits_as_a_candidate_beside_the_active_one(
    sqlite_url: str, tmp_path: Path,
) -> None:
    runtime = runtime_on(sqlite_url, tmp_path)
    # A deployment that has been serving the previous model.
    register_model(runtime.sessions, read_card(PREVIOUS), str(PREVIOUS))
    ref, _ = runtime.current_model()
    assert ref.version == "pbc-lite0-ft-v4a"  # no switch behind the admins' backs
    statuses = {e.ref.version: e.status for e in list_models(runtime.sessions)}
    assert statuses[read_card(DEFAULT_MODEL_PATH).version] is ModelStatus.CANDIDATE
