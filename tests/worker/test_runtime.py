"""The worker serves the registry's active model and offers a newly shipped one to admins."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from core.db import migrate
from core.enums import ModelStatus
from core.registry import list_models, register_model
from core.settings import DEFAULT_MODEL_PATH, PREVIOUS_MODEL_PATH, Settings
from vision.model.artifact import ModelIntegrityError, read_card
from worker.runtime import WorkerRuntime

PREVIOUS = PREVIOUS_MODEL_PATH


def runtime_on(sqlite_url: str, tmp_path: Path,
               model_path: Path = DEFAULT_MODEL_PATH) -> WorkerRuntime:
    migrate.upgrade(sqlite_url)
    return WorkerRuntime(Settings(data_dir=tmp_path, database_url=sqlite_url,
                                  model_path=model_path, torchscript=False,
                                  red_cell_model_path=None))


def broken_copy(tmp_path: Path, content: bytes) -> Path:
    """A model file that does not match the shipped card beside it."""
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(content)
    broken.with_suffix(".json").write_text(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    return broken


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
    assert ref.version == read_card(PREVIOUS).version  # no switch behind the admins' backs
    statuses = {e.ref.version: e.status for e in list_models(runtime.sessions)}
    assert statuses[read_card(DEFAULT_MODEL_PATH).version] is ModelStatus.CANDIDATE


def test_a_corrupt_new_model_file_does_not_stop_the_serving_version(
    sqlite_url: str, tmp_path: Path,
) -> None:
    truncated = broken_copy(tmp_path, DEFAULT_MODEL_PATH.read_bytes()[:-1000])
    runtime = runtime_on(sqlite_url, tmp_path, truncated)
    register_model(runtime.sessions, read_card(PREVIOUS), str(PREVIOUS))
    ref, _ = runtime.current_model()
    assert ref.version == read_card(PREVIOUS).version
    assert [e.ref.version for e in list_models(runtime.sessions)] == [read_card(PREVIOUS).version]


def test_a_corrupt_model_file_in_an_empty_registry_is_refused(sqlite_url: str,
                                                              tmp_path: Path) -> None:
    runtime = runtime_on(sqlite_url, tmp_path, broken_copy(tmp_path, b"not a model"))
    with pytest.raises(ModelIntegrityError):
        runtime.current_model()


def test_a_warmed_up_worker_has_its_serving_model_loaded_before_the_first_task(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtime_on(sqlite_url, tmp_path)
    loads: list[Path] = []
    load = runtime._load
    monkeypatch.setattr(runtime, "_load", lambda path: loads.append(path) or load(path))
    runtime.warm_up()
    assert len(loads) == 1
    ref, _ = runtime.current_model()  # what the first task asks for
    assert len(loads) == 1 and ref.version == read_card(DEFAULT_MODEL_PATH).version


def test_the_thread_that_runs_the_tasks_uses_the_configured_torch_threads(
    sqlite_url: str, tmp_path: Path,
) -> None:
    # torch's thread count is the calling thread's own: set only where the model is warmed up
    # (another thread), the tasks ran on every core and two workers spun against each other.
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runtime_on(sqlite_url, tmp_path)  # torch_threads: 1, the default
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_task_run_in_a_thread_pool_uses_the_configured_torch_threads(
    sqlite_url: str, tmp_path: Path,
) -> None:
    # A thread pool's threads (HV_WORKER_CONCURRENCY > 1) start with torch's default, not the
    # setting made where the runtime was built.
    runtime = runtime_on(sqlite_url, tmp_path)
    seen: list[int] = []

    def task() -> None:
        torch.set_num_threads(2)  # what a fresh thread may start with on a larger machine
        runtime.classify(submission_id=404)  # unknown: nothing to do, but run as a task
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=task)
    worker.start()
    worker.join()
    assert seen == [1]
