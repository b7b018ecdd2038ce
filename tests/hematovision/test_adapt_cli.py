"""``hematovision adapt``: one laboratory's labelled folder in, a loadable model out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file

from core.settings import DEFAULT_MODEL_PATH
from tests.conftest import fixture_image_folder, pbc_fixtures, tight_crop
from tests.vision.training.test_adapt import stained_elsewhere
from vision.field.analyse import analyse
from vision.model.artifact import read_card
from vision.model.classifier import CellClassifier


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hematovision", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def lab_folder(root: Path, names: dict[str, str]) -> Path:
    """An image folder of recoloured fixture cells, folder names as the laboratory wrote them."""
    for folder, label in names.items():
        (root / folder).mkdir(parents=True)
        stained_elsewhere(Image.open(pbc_fixtures()[label])).save(root / folder / "cell.png")
    return root


def test_an_adapted_model_is_written_and_loads_for_evaluate_and_serving(tmp_path: Path) -> None:
    examples = lab_folder(tmp_path / "lab", {"Neutrophil": "neutrophil",
                                             "LYMPHOCYTE": "lymphocyte"})
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"),
                  "--version", "lab-a-v1", "--check", str(examples))
    assert result.returncode == 0, result.stderr
    assert "adapted model written" in result.stdout and "held-out cells (2)" in result.stdout
    weights = tmp_path / "out" / "lab-a-v1.safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["version"] == "lab-a-v1"
    assert card["data"]["cells_per_class"] == {"lymphocyte": 1, "neutrophil": 1}
    assert card["data"]["adapted_from"] == read_card(DEFAULT_MODEL_PATH).version
    assert card["data"]["framing"] == "path"
    assert card["metrics"]["held_out"]["accuracy_after"] == 1.0
    classifier = CellClassifier.from_artifact(weights, "cpu")  # the worker's loader
    assert classifier.version == "lab-a-v1"
    evaluated = _run("evaluate", str(examples), "--model", str(weights), "--json",
                     "--png", str(tmp_path / "cm.png"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == 1.0


def test_a_laboratorys_tight_crops_are_learnt_as_the_bot_will_show_its_cells(
    tmp_path: Path,
) -> None:
    # The laboratory crops tight; the bot frames its photos' cells as PBC does. Learnt as the
    # bot shows them, its cells are named through the one analysis path the worker runs.
    names = {"neutrophil": "neutrophil", "lymphocyte": "lymphocyte"}
    examples = tmp_path / "lab"
    for folder, label in names.items():
        (examples / folder).mkdir(parents=True)
        tight_crop(stained_elsewhere(Image.open(pbc_fixtures()[label]))).save(
            examples / folder / "cell.png")
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"),
                  "--version", "tight-lab-v1")
    assert result.returncode == 0, result.stderr
    classifier = CellClassifier.from_artifact(tmp_path / "out" / "tight-lab-v1.safetensors")
    for folder, label in names.items():
        analysis = analyse(Image.open(examples / folder / "cell.png"), classifier)
        assert [c.label for c in analysis.classified] == [label]


def test_a_folder_that_is_not_a_label_is_refused_clearly(tmp_path: Path) -> None:
    examples = lab_folder(tmp_path / "lab", {"segmented": "neutrophil"})
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "'segmented' in" in result.stderr and "not a known label" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_zoom_under_one_is_refused_clearly(tmp_path: Path) -> None:
    examples = lab_folder(tmp_path / "lab", {"neutrophil": "neutrophil"})
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"),
                  "--zoom", "0.7")
    assert result.returncode == 2
    assert "--zoom must be at least 1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_whole_source_is_added_with_the_base_cells_distilled(tmp_path: Path) -> None:
    """Here with every cell also learnt zoomed (``--zoom``), as v8 was built."""
    examples = lab_folder(tmp_path / "lab", {"neutrophil": "neutrophil"})
    base = tmp_path / "base"
    for label in ("basophil", "platelet", "neutrophil"):
        (base / label).mkdir(parents=True)
        Image.open(pbc_fixtures()[label]).save(base / label / "cell.png")
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"),
                  "--version", "two-sources-v1", "--base-cells", str(base), "--zoom", "1.43")
    assert result.returncode == 0, result.stderr
    assert "embedding 3 of the base model's cells to distil" in result.stderr
    assert "embedding them zoomed" in result.stderr
    card = json.loads((tmp_path / "out" / "two-sources-v1.json").read_text())
    assert card["data"]["base_cells_count"] == 3
    assert card["training"]["adapt"]["lab_weight"] == 1 / 11
    assert card["training"]["adapt"]["zoom"] == 1.43
    classifier = CellClassifier.from_artifact(tmp_path / "out" / "two-sources-v1.safetensors")
    for label in ("basophil", "platelet"):  # the base cells keep their names
        assert classifier.classify_crops([Image.open(base / label / "cell.png")])[0].label == label
    [cell] = classifier.classify_crops([Image.open(examples / "neutrophil" / "cell.png")])
    assert cell.label == "neutrophil"


def test_the_networks_tail_learns_with_the_base_cells_replayed(tmp_path: Path) -> None:
    examples = lab_folder(tmp_path / "lab", {"neutrophil": "neutrophil",
                                             "lymphocyte": "lymphocyte"})
    replay = fixture_image_folder(tmp_path / "base")
    result = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out"),
                  "--version", "lab-a-tail", "--replay", str(replay), "--check", str(examples))
    assert result.returncode == 0, result.stderr
    assert "tail step 30/30" in result.stderr and "refitting the rejection step" in (
        result.stderr)
    weights = tmp_path / "out" / "lab-a-tail.safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    assert (card["training"]["network"], card["training"]["replay_cells"]) == ("tail", 8)
    assert card["metrics"]["held_out"]["accuracy_after"] == 1.0
    # The tail moved; what comes before it did not.
    base, adapted = load_file(str(DEFAULT_MODEL_PATH)), load_file(str(weights))
    assert torch.equal(base["blocks.0.depthwise.0.weight"], adapted["blocks.0.depthwise.0.weight"])
    assert not torch.equal(base["head.0.weight"], adapted["head.0.weight"])
    refused = _run("adapt", "--examples", str(examples), "--out", str(tmp_path / "out2"),
                   "--replay", str(examples))  # two classes: the replay lacks the others
    assert refused.returncode == 2 and "holds no cells of some of" in refused.stderr
