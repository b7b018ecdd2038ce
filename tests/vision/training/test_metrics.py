import torch

from vision.training.calibration import fit_temperature
from vision.training.metrics import classification_report, expected_calibration_error


def test_report_counts_a_known_confusion() -> None:
    # true: 0 0 1 1 ; predicted: 0 1 1 1
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    report = classification_report(probs, torch.tensor([0, 0, 1, 1]), ["a", "b"])
    assert report.accuracy == 0.75
    assert report.confusion == [[1, 1], [0, 2]]
    assert report.per_class["a"].precision == 1.0
    assert report.per_class["a"].recall == 0.5
    assert abs(report.per_class["b"].precision - 2 / 3) < 1e-9
    assert abs(report.macro_f1 - (2 / 3 + 0.8) / 2) < 1e-9


def test_perfectly_calibrated_confidence_has_zero_ece() -> None:
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, torch.tensor([0, 1])) == 0.0


def test_temperature_scaling_softens_overconfident_logits() -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (2000,))
    logits = torch.randn(2000, 4)
    logits[torch.arange(2000), labels] += 1.0  # right only sometimes...
    overconfident = logits * 8  # ...but very sure of itself
    temperature = fit_temperature(overconfident, labels)
    assert temperature > 4
    before = expected_calibration_error(overconfident.softmax(1), labels)
    after = expected_calibration_error((overconfident / temperature).softmax(1), labels)
    assert after < before / 2
