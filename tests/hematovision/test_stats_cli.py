"""``hematovision stats --group G``: a laboratory's agreement and trust, for its admins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.enums import Role
from core.settings import Settings
from hematovision.stats_cli import run_stats
from tests.core.conftest import Lab
from tests.core.test_laboratory import reviewed_field


def test_prints_the_agreement_and_writes_the_calibration_classify_reads(
    lab: Lab, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    reviewer = lab.member(40, Role.REVIEWER, group="lab-a")
    reviewed_field(lab, reviewer, ["neutrophil"] * 50, 0.97, corrections={0: "ig"})
    reviewed_field(lab, reviewer, ["lymphocyte"] * 60, 0.99)
    calibration = tmp_path / "lab-a.json"
    assert run_stats(Settings(database_url=database_url), "lab-a", calibration) == 0
    out = capsys.readouterr().out
    assert "laboratory lab-a: serving m1" in out
    assert "agreement with its experts (first answer kept): 99% of 110 reviewed cells" in out
    assert "   m1: 99% of 110" in out
    assert "   Neutrophil: 100% of 49" in out and "   Immature granulocyte: 0% of 1" in out
    assert "✅ Measured in your laboratory: answers from 99% on" in out
    written = json.loads(calibration.read_text())
    assert (written["version"], written["trust"]["threshold"]) == ("m1", 0.99)


def test_an_unknown_laboratory_is_an_error(lab: Lab, database_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_stats(Settings(database_url=database_url), "lab-z", None) == 2
    assert "no laboratory named 'lab-z'" in capsys.readouterr().err
