"""``make demo`` (the README's first command: ``python -m devkit demo``) runs the whole stack
on embedded defaults."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_sends_the_sample_and_prints_the_result_every_time_it_runs(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    env["HV_DATA_DIR"] = str(tmp_path)
    # Again on the data the first run left: its photo must not be taken for the last run's.
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "devkit", "demo"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "broker:   filesystem://" in result.stdout
        assert "sqlite:///" in result.stdout
        assert "Received, analysing" in result.stdout
        assert "🔬 Result" in result.stdout and "Neutrophil" in result.stdout
    assert (tmp_path / "hematovision.db").exists()
    assert [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
