"""The producer side of the task queue on the embedded broker."""

from pathlib import Path

import pytest

from core.settings import Settings
from core.tasks import TaskQueue


def test_the_embedded_broker_writes_nothing_outside_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    queue = TaskQueue(settings)
    queue.enqueue_classify(1)
    queue.close()
    assert list((settings.broker_folder / "queue").iterdir())  # the message itself
    assert (settings.broker_folder / "control" / "classify.exchange").exists()
    assert list((tmp_path / "cwd").iterdir()) == []
