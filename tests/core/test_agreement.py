"""A laboratory's agreement: the share of reviewed cells whose first answer its experts kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.agreement import AgreementReport, ReviewedAnswer, agreement, week_of


def answer(label: str, expert: str, day: int, version: str = "v1") -> ReviewedAnswer:
    return ReviewedAnswer(label, expert, 0.9, False, version,
                          datetime(2026, 11, day, 9, tzinfo=UTC))


def test_agreement_is_the_share_of_first_answers_kept() -> None:
    found = agreement([answer("neutrophil", "neutrophil", 2), answer("monocyte", "lymphocyte", 2)])
    assert (found.reviewed, found.kept, found.share) == (2, 1, 0.5)
    assert found.text() == "50% of 2"
    assert agreement([]).text() == "none reviewed"


def test_the_report_splits_by_week_of_review_by_version_and_by_the_experts_class() -> None:
    answers = [answer("monocyte", "lymphocyte", 2), answer("lymphocyte", "lymphocyte", 4),
               answer("neutrophil", "neutrophil", 10, "v1-lab-a1"),
               answer("lymphocyte", "lymphocyte", 11, "v1-lab-a1"),
               answer("blast", "blast", 12, "v1-lab-a1")]
    report = AgreementReport.of(list(reversed(answers)))
    assert report.overall.text() == "80% of 5"
    assert [(week, a.text()) for week, a in report.weeks] == [
        (date(2026, 11, 2), "50% of 2"), (date(2026, 11, 9), "100% of 3")]
    assert {v: a.text() for v, a in report.versions.items()} == {
        "v1": "50% of 2", "v1-lab-a1": "100% of 3"}
    assert list(report.versions) == ["v1", "v1-lab-a1"]  # first reviewed first
    # Clinical order: blasts first.
    assert [(label, a.text()) for label, a in report.classes] == [
        ("blast", "100% of 1"), ("neutrophil", "100% of 1"), ("lymphocyte", "67% of 3")]


def test_a_week_starts_on_monday() -> None:
    assert week_of(datetime(2026, 12, 6, 23, tzinfo=UTC)) == date(2026, 11, 30)
    assert week_of(datetime(2026, 11, 30, 0, tzinfo=UTC)) == date(2026, 11, 30)
