"""``hematovision classify`` as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import heic_bytes, pbc_fixtures


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hematovision", "classify", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_prints_the_label_and_confidence_of_a_cell() -> None:
    image = pbc_fixtures()["platelet"]
    result = _run(str(image))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{image}: Platelet ")
    assert "%" in result.stdout


def test_json_gives_one_object_per_image_with_cells() -> None:
    images = [pbc_fixtures()["eosinophil"], pbc_fixtures()["lymphocyte"]]
    result = _run("--json", *map(str, images))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in images]
    for line in lines:
        [cell] = line["cells"]
        assert {"label", "confidence", "top3", "box", "kind", "review"} <= set(cell)
        assert 0 < cell["confidence"] <= 1 and len(cell["top3"]) == 3
        # The close-up's box is its white cell, inside the image.
        x0, y0, x1, y1 = cell["box"]
        assert 0 <= x0 < x1 <= line["width"] and 0 <= y0 < y1 <= line["height"]
    assert [line["cells"][0]["label"] for line in lines] == ["eosinophil", "lymphocyte"]


def test_a_missing_file_is_a_clear_error_with_nonzero_exit(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nope.jpg"))
    assert result.returncode == 1
    assert "nope.jpg" in result.stderr and "No such file" in result.stderr


def test_a_non_image_is_a_clear_error_and_other_images_still_run(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    good = pbc_fixtures()["monocyte"]
    result = _run("--json", str(text), str(good))
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "not an image" in first["error"]
    assert second["cells"][0]["label"]
    assert "not an image" in result.stderr


def test_more_photos_than_one_pass_holds_are_each_answered_in_their_order(
        tmp_path: Path) -> None:
    # 16 photos share a pass; the 17th and a broken file beside them keep their places.
    cells = sorted(pbc_fixtures().items())
    images = [cells[i % len(cells)][1] for i in range(17)]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 cut short")
    order = [*images[:15], broken, *images[15:]]
    result = _run("--json", *map(str, order))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in order]
    assert "error" in lines[15] and all("cells" in line for i, line in enumerate(lines)
                                        if i != 15)
    assert [lines[i]["cells"][0]["label"] for i in (0, 16)] == [cells[0][0], cells[15 % 8][0]]


def test_an_iphone_heic_is_classified(tmp_path: Path) -> None:
    image = tmp_path / "IMG_0001.heic"
    with Image.open(pbc_fixtures()["eosinophil"]) as cell:
        image.write_bytes(heic_bytes(cell.convert("RGB")))
    result = _run("--json", str(image))
    assert result.returncode == 0, result.stderr
    [cell_result] = json.loads(result.stdout)["cells"]
    assert cell_result["label"] == "eosinophil"


def test_without_a_calibration_every_answer_is_to_confirm_as_for_a_new_laboratory() -> None:
    result = _run(str(pbc_fixtures()["neutrophil"]))
    assert result.returncode == 0, result.stderr
    assert "[review: to confirm: not yet measured in this laboratory]" in result.stdout
    assert result.stdout.rstrip().endswith("more of those marked only \"to confirm\".")


def test_a_laboratorys_calibration_leaves_its_confident_answers_unflagged(tmp_path: Path) -> None:
    image = pbc_fixtures()["neutrophil"]
    [cell] = json.loads(_run("--json", str(image)).stdout)["cells"]
    version = json.loads(Path("vision/weights/pbc-bionet-lite0-v7.json").read_text())["version"]

    def calibration(threshold: float) -> str:
        path = tmp_path / f"lab-a-{threshold}.json"
        path.write_text(json.dumps({"laboratory": "lab-a", "version": version, "trust": {
            "reviewed": 200, "agreeing": 196, "threshold": threshold, "needed": 0}}))
        return str(path)

    # The JSON rounds the confidence to six places: a threshold just under it.
    result = _run("--json", "--calibration", calibration(cell["confidence"] - 1e-5), str(image))
    assert result.returncode == 0, result.stderr
    [calibrated] = json.loads(result.stdout)["cells"]
    assert not calibrated["review"] and calibrated["review_reasons"] == []
    [strict] = json.loads(_run("--json", "--calibration", calibration(1.0), str(image)).stdout)[
        "cells"]
    assert strict["review_reasons"] == ["below_lab_threshold"]


def test_a_calibration_measured_on_another_version_is_refused(tmp_path: Path) -> None:
    calibration = tmp_path / "old.json"
    calibration.write_text(json.dumps({"version": "v1-retired", "trust": {
        "reviewed": 100, "agreeing": 99, "threshold": 0.5, "needed": 0}}))
    result = _run("--calibration", str(calibration), str(pbc_fixtures()["neutrophil"]))
    assert result.returncode == 2
    assert "measured on v1-retired" in result.stderr
