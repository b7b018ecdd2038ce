"""``hematovision evaluate`` over an ImageFolder tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import fixture_image_folder, pbc_fixtures


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hematovision", "evaluate", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def test_json_reports_accuracy_f1_count_and_per_class(tmp_path: Path) -> None:
    png = tmp_path / "cm.png"
    data = fixture_image_folder(tmp_path / "data", upper=True)
    result = _evaluate(str(data), "--json", "--png", str(png))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 8
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1
    assert set(report["per_class"]) == set(pbc_fixtures())
    assert {"precision", "recall", "f1", "support"} <= set(report["per_class"]["ig"])
    assert sum(map(sum, report["confusion_matrix"])) == 8
    assert len(report["mistakes"]) == round(8 * (1 - report["accuracy"]))
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.width > 400


def test_text_output_shows_the_table_and_matrix(tmp_path: Path) -> None:
    data = fixture_image_folder(tmp_path / "data")
    result = _evaluate(str(data), "--png", str(tmp_path / "cm.png"))
    assert result.returncode == 0, result.stderr
    assert "macro-F1" in result.stdout and "confusion matrix" in result.stdout
    assert "Immature granulocyte" in result.stdout


def test_an_unknown_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    data = fixture_image_folder(tmp_path / "data")
    (data / "smudge_cell").mkdir()
    result = _evaluate(str(data))
    assert result.returncode == 2
    assert "'smudge_cell'" in result.stderr and "not a known label" in result.stderr


def test_a_mislabelled_cell_is_listed_and_drawn_among_the_mistakes(tmp_path: Path) -> None:
    data = fixture_image_folder(tmp_path / "data")
    # An eosinophil filed as a lymphocyte: the model is right, the folder is wrong.
    eosinophil = next((data / "eosinophil").iterdir())
    eosinophil.rename(data / "lymphocyte" / eosinophil.name)
    sheet = tmp_path / "wrong.png"
    result = _evaluate(str(data), "--json", "--png", str(tmp_path / "cm.png"),
                       "--mistakes-png", str(sheet))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"path": str(data / "lymphocyte" / eosinophil.name), "true": "lymphocyte",
            "predicted": "eosinophil"}.items() <= report["mistakes"][0].items()
    assert report["mistakes_png"] == str(sheet)
    with Image.open(sheet) as picture:
        assert picture.format == "PNG"
