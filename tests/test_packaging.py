"""What a plain ``pip install .`` ships: the product with its weights and migrations, and none of
the test support, benchmarks or research."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_product_its_weights_and_migrations_but_no_test_support(
    tmp_path: Path,
) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)], check=True,
                   capture_output=True, cwd=tmp_path)
    [wheel] = tmp_path.glob("hematovision-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names if not name.startswith("hematovision-")}
    assert tops == {"vision", "core", "bot", "worker", "hematovision", "migrations"}
    assert "vision/weights/pbc-bionet-lite0-v7.safetensors" in names
    assert "vision/weights/pbc-lite0-ft-v5.safetensors" in names  # the rollback model
    assert "vision/weights/rbc-centres-v3.safetensors" in names
    assert "vision/weights/hv-lite0-v10-abnormal.safetensors" in names  # names blasts
    assert "migrations/env.py" in names and "migrations/script.py.mako" in names
    assert any(name.startswith("migrations/versions/0001_") for name in names)


def test_the_compose_files_write_no_password_and_redis_always_requires_one() -> None:
    for name in ("docker-compose.yml", "docker-compose.remote-worker.yml"):
        # ${VAR:?message}: the message may hold spaces; the variable is what counts.
        text = re.sub(r"\$\{([A-Z_]+)[^}]*\}", r"${\1}", "\n".join(
            line for line in (ROOT / name).read_text().splitlines()
            if not line.lstrip().startswith("#")))  # comments show placeholders
        # Credentials in a URL and POSTGRES_PASSWORD come from the environment (.env) only.
        for secret in re.findall(r"://[^:/@\s]*:([^@\s]+)@", text) + \
                re.findall(r"POSTGRES_PASSWORD:\s*(\S+)", text):
            assert secret.startswith("${"), (name, secret)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '"--requirepass", "${REDIS_PASSWORD:?' in compose
    assert "redis://:${REDIS_PASSWORD" in compose
