from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot import messages
from bot.messages import DISCLAIMER, job_text, result_text
from core.access import Member
from core.agreement import AgreementReport, ReviewedAnswer
from core.cases import CaseDetail, Photo
from core.enums import JobStatus, ModelStatus, Role, SubmissionStatus
from core.laboratory import Standing
from core.registry import ModelEntry, ModelRef, screen_card
from core.retraining.jobs import JobReport
from core.reviews import ReviewableCell
from core.settings import ABNORMAL_MODEL_PATH
from core.submissions import CellView, Delivery
from core.trust import NEW_LABORATORY, ScoredAnswer, Trust, measure


def _delivery(
    status: SubmissionStatus, cells: list[CellView], error: str | None = None,
    mode: str = "cell",
) -> Delivery:
    return Delivery(1, 10, 5, 6, "photo", status, error, "v1", cells, mode=mode,
                    red_cell_model="rbc-centres-v2" if mode == "field" else None,
                    rbc_count=40, platelet_count=None)


def _cell(index: int, label: str, confidence: float) -> CellView:
    top3 = [{"label": label, "confidence": confidence},
            {"label": "monocyte", "confidence": (1 - confidence) / 2}]
    return CellView(index, "wbc", label, confidence, top3, (0, 0, 10, 10),
                    review=confidence < 0.7)


def test_a_single_cell_result_names_the_label_confidence_and_disclaimer() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE, [_cell(0, "ig", 0.912)]))
    assert "Immature granulocyte: 91.2%" in text
    assert "next: Monocyte 4.4%" in text
    assert "Model: v1" in text
    assert DISCLAIMER in text


def test_several_cells_are_numbered() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE,
                                 [_cell(0, "neutrophil", 0.9), _cell(1, "platelet", 0.8)]))
    assert "Cell 1: Neutrophil: 90.0%" in text and "Cell 2: Platelet: 80.0%" in text


def test_a_rejection_carries_the_reason() -> None:
    text = result_text(_delivery(SubmissionStatus.REJECTED, [], "The file is empty."))
    assert "could not analyse" in text and "The file is empty." in text


def test_a_failure_asks_to_send_again_without_internal_details() -> None:
    text = result_text(_delivery(SubmissionStatus.FAILED, [], "RuntimeError: CUDA oom"))
    assert "send the image again" in text and "CUDA" not in text


def test_a_field_result_gives_counts_differential_and_numbered_cells() -> None:
    cells = [_cell(0, "neutrophil", 0.9), _cell(1, "lymphocyte", 0.6), _cell(2, "neutrophil", 0.8),
             CellView(3, "rbc", None, None, [], (0, 0, 5, 5))]
    text = result_text(_delivery(SubmissionStatus.DONE, cells, mode="field"))
    assert "White cells: 3 · Red cells: 40 · Platelets: not estimated" in text
    assert text.index("Neutrophil: 2 (67%)") < text.index("Lymphocyte: 1 (33%)")
    assert "2. Lymphocyte: 60.0%  ⚠️ please review" in text
    assert "Model: v1 · red cells: rbc-centres-v2" in text


def test_runners_up_that_would_read_zero_percent_are_left_out() -> None:
    sure = CellView(0, "cell", "neutrophil", 0.9993,
                    [{"label": "neutrophil", "confidence": 0.9993},
                     {"label": "ig", "confidence": 0.0006},
                     {"label": "blast", "confidence": 0.0001}], (0, 0, 10, 10))
    text = result_text(_delivery(SubmissionStatus.DONE, [sure]))
    assert "next: Immature granulocyte 0.1%\n" in text and "Blast" not in text
    nothing_else = replace(sure, top3=[*sure.top3[:1], {"label": "blast", "confidence": 0.0002}])
    assert "next:" not in result_text(_delivery(SubmissionStatus.DONE, [nothing_else]))


def test_a_screened_result_names_its_blast_screen_beside_the_model() -> None:
    delivery = replace(_delivery(SubmissionStatus.DONE, [_cell(0, "lymphocyte", 0.97)]),
                       screen_model="hv-lite0-v10-abnormal")
    assert "Model: v1 · blast screen: hv-lite0-v10-abnormal\n" in result_text(delivery)


def test_a_field_without_white_cells_says_so() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE, [], mode="field"))
    assert "No white cell found" in text


def _finished_job(outcome_extra: dict[str, Any]) -> JobReport:
    outcome = {"version": "m-rt3", "parent_version": "m", "promoted": True,
               "gate": {"candidate_accuracy": 0.99, "baseline_accuracy": 0.991, "reasons": []},
               "expert_examples": 12, "replay_examples": 1091, "minutes": 6.8,
               "history": [{"epoch": 1, "val_accuracy": 0.99}]} | outcome_extra
    return JobReport(job_id=3, chat_id=1, message_id=2, status=JobStatus.DONE, stage="done",
                     progress={}, seq=9, candidate_version="m-rt3", outcome=outcome, error=None)


def test_a_finished_retraining_says_how_many_corrections_were_learnt() -> None:
    text = job_text(_finished_job({"expert_cells": {"of": 12, "candidate": 11, "active": 4}}))
    assert "Expert-labelled cells given the expert's label: 11 of 12 (active model: 4)." in text
    assert "Passed the gate" in text


def test_a_retraining_without_corrections_or_from_before_the_count_says_nothing_of_them() -> None:
    for extra in ({"expert_cells": {"of": 0, "candidate": 0, "active": 0}}, {}):
        text = job_text(_finished_job(extra))
        assert "Expert-labelled cells given" not in text
        assert "finished: candidate m-rt3" in text


def test_a_kept_candidate_says_what_is_worse_and_what_is_better() -> None:
    text = job_text(_finished_job({"promoted": False, "gate": {
        "candidate_accuracy": 0.99, "baseline_accuracy": 0.991,
        "reasons": ["flags 100.0% of the base test cells for review, against 3.1% (at most "
                    "1.0 point more allowed)"],
        "better": ["names 34 of the laboratory's 40 held-out expert cells right, against 30"]}}))
    assert ("⏸ Not promoted: it stays a candidate, and the active model keeps serving. Worse "
            "than the active model:\n   • flags 100.0% of the base test cells") in text
    assert "Better:\n   • names 34 of the laboratory's 40 held-out" in text
    assert text.endswith("Promote it anyway, or discard it, with the buttons below.")


def test_a_running_job_says_where_its_evaluation_is() -> None:
    running = JobReport(job_id=4, chat_id=1, message_id=2, status=JobStatus.RUNNING,
                        stage="evaluating", progress={
                            "detail": "the tail adaptation: 512 of 1710 base test cells"},
                        seq=3, candidate_version=None, outcome=None, error=None)
    assert job_text(running) == ("🏋️ Retraining job 4: evaluating (the tail adaptation: 512 of "
                                 "1710 base test cells)…")


def test_a_long_text_becomes_pages_within_the_limit_broken_between_lines() -> None:
    lines = [f"Photo {n}: Neutrophil 3 (60%), Lymphocyte 2 (40%) 🔬" for n in range(200)]
    text = "\n".join(lines)
    split = messages.pages(text)
    assert len(split) > 1
    assert all(messages.telegram_length(page) <= messages.TEXT_LIMIT for page in split)
    assert "\n".join(split) == text  # nothing lost, nothing reordered


def test_emoji_count_twice_as_telegram_counts_them() -> None:
    assert messages.telegram_length("🔬a") == 3
    assert [len(p) for p in messages.pages("🔬" * 3000)] == [2048, 952]


def test_a_text_that_fits_is_one_page_as_it_is() -> None:
    assert messages.pages("short\ntext") == ["short\ntext"]


def test_an_edit_is_shortened_to_one_message_with_a_note() -> None:
    text = "\n".join(f"line {n}" for n in range(2000))
    fitted = messages.fit(text)
    assert messages.telegram_length(fitted) <= messages.TEXT_LIMIT
    assert fitted.startswith("line 0\nline 1\n") and fitted.endswith(messages.SHORTENED)
    assert messages.fit("short") == "short"


def test_an_album_answer_gives_the_differential_over_all_photos_and_a_line_per_photo() -> None:
    album = [
        _delivery(SubmissionStatus.DONE, [_cell(0, "neutrophil", 0.95)]),
        _delivery(SubmissionStatus.DONE, [_cell(0, "neutrophil", 0.9), _cell(1, "lymphocyte", 0.6),
                                          CellView(2, "rbc", None, None, [], (0, 0, 5, 5))],
                  mode="field"),
        _delivery(SubmissionStatus.REJECTED, [], "This file is not an image.\nPlease send one."),
    ]
    text = messages.album_text(album)
    assert text.startswith("🔬 Album of 3 photos")
    assert "Differential over the album (3 white cells):" in text
    assert text.index("Neutrophil: 2 (67%)") < text.index("Lymphocyte: 1 (33%)")
    assert "Photo 1: Neutrophil: 95.0%" in text
    assert ("Photo 2: field: 2 white cell(s) (Neutrophil 1, Lymphocyte 1), 40 red cells, "
            "platelets not estimated  ⚠️ please review") in text
    assert "Photo 3: ❌ not analysed: This file is not an image. Please send one." in text
    assert "Model: v1" in text and DISCLAIMER in text


def test_an_album_of_ten_crowded_fields_still_fits_one_message() -> None:
    crowded = [_cell(i, label, 0.9) for i in range(40)
               for label in ("neutrophil", "lymphocyte", "monocyte", "eosinophil")]
    text = messages.album_text([_delivery(SubmissionStatus.DONE, crowded, mode="field")] * 10)
    assert messages.telegram_length(text) <= messages.TEXT_LIMIT
    assert "Photo 10: field: 160 white cell(s)" in text and DISCLAIMER in text


def _flagged(index: int, label: str, confidence: float, reasons: tuple[str, ...]) -> CellView:
    return CellView(index, "wbc", label, confidence,
                    [{"label": label, "confidence": confidence}], (0, 0, 10, 10),
                    review=bool(reasons), reasons=reasons)


def test_a_result_holding_a_blast_opens_with_the_alert() -> None:
    cells = [_cell(0, "blast", 0.93), _cell(1, "neutrophil", 0.9), _cell(2, "smudge", 0.9)]
    text = result_text(_delivery(SubmissionStatus.DONE, cells, mode="field"))
    assert text.startswith("🚨 Blasts seen: 1 of 2 white cells — urgent review by a "
                           "haematologist\n🔬 Field analysis")
    assert "Blast: 1 (50%)" in text
    assert "Smudge cells: 1 (not in the differential)" in text


def test_a_flag_says_why_in_plain_words() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE, [
        _flagged(0, "monocyte", 0.95, ("possible_blast", "unusual"))]))
    assert ("Monocyte: best guess  ⚠️ please review: could be a blast; unlike the cells it "
            "learnt from") in text
    assert "🚨" not in text  # a possible blast is flagged, not counted as one


def test_a_cell_unlike_the_training_cells_shows_no_confidence_beside_its_flag() -> None:
    cell = replace(_flagged(0, "eosinophil", 0.9999, ("unusual",)),
                   top3=[{"label": "eosinophil", "confidence": 0.9999},
                         {"label": "monocyte", "confidence": 0.0001}])
    text = result_text(_delivery(SubmissionStatus.DONE, [cell]))
    assert "Eosinophil: best guess  ⚠️ please review: unlike the cells it learnt from" in text
    assert "next: Monocyte\n" in text + "\n" and "%" not in text.split("Model:")[0]


def test_a_confident_answer_never_reads_100_percent() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE, [_cell(0, "neutrophil", 0.99996)]))
    assert "Neutrophil: 99.9%" in text and "100.0%" not in text


def test_an_albums_answer_opens_with_the_alert_over_all_its_photos() -> None:
    album = [_delivery(SubmissionStatus.DONE, [_cell(0, "neutrophil", 0.95)]),
             _delivery(SubmissionStatus.DONE, [_cell(0, "promonocyte", 0.9)])]
    text = messages.album_text(album)
    assert text.startswith("🚨 Blasts seen: 1 of 2 white cells")
    assert text.index("🚨") < text.index("Differential over the album")


def test_cells_that_could_be_blasts_are_announced_before_the_differential() -> None:
    text = result_text(_delivery(SubmissionStatus.DONE, [
        _flagged(0, "ig", 0.92, ("possible_blast",)), _cell(1, "neutrophil", 0.95)],
        mode="field"))
    assert text.startswith("⚠️ 1 cell could be a blast: review by a haematologist (flagged "
                           "below)\n🔬 Field analysis")


def test_the_reply_says_in_one_line_which_trust_regime_the_laboratory_is_in() -> None:
    cells = [_flagged(0, "neutrophil", 0.97, ("to_confirm",)),
             _flagged(1, "monocyte", 0.95, ("unusual", "to_confirm"))]
    learning = replace(_delivery(SubmissionStatus.DONE, cells, mode="field"),
                       trust=measure([ScoredAnswer(0.9, True, False)] * 12))
    text = result_text(learning)
    assert "1. Neutrophil: 97.0%  · to confirm" in text  # only the laboratory asks
    assert "2. Monocyte: best guess  ⚠️ please review: unlike the cells it learnt from" in text
    assert ("🧪 New to your laboratory: every answer is to confirm until your experts have "
            "reviewed 37 more of those marked only \"to confirm\"") in text
    assert text.index("🧪") < text.index("Model: v1")
    measured = replace(learning, trust=Trust(200, 190, 0.93, 0))
    assert "✅ Measured in your laboratory: answers from 93% on agreed" in result_text(measured)
    # Results from before trust was recorded, and rejections, carry no such line.
    assert "🧪" not in result_text(replace(learning, trust=None))
    assert messages.album_text([learning]).count("🧪 New to your laboratory") == 1


def test_admins_see_their_laboratorys_agreement_per_week_version_and_class() -> None:
    answers = [ReviewedAnswer("monocyte", "lymphocyte", 0.95, False, "v1",
                              datetime(2026, 11, 2, tzinfo=UTC)),
               ReviewedAnswer("lymphocyte", "lymphocyte", 0.99, False, "v1-lab-a-a3",
                              datetime(2026, 11, 10, tzinfo=UTC))]
    text = messages.standing_text(Standing("lab-a", "v1-lab-a-a3", AgreementReport.of(answers),
                                           NEW_LABORATORY))
    assert text.startswith("📈 lab-a: served by v1-lab-a-a3\nYour experts kept the bot's first "
                           "answer for 50% of 2 reviewed cells.")
    assert "   02 Nov 2026: 0% of 1\n   09 Nov 2026: 100% of 1" in text
    assert "   v1: 0% of 1\n   v1-lab-a-a3: 100% of 1" in text
    assert "   Lymphocyte: 50% of 2" in text
    assert text.endswith(NEW_LABORATORY.line())


def test_a_group_name_typed_in_capitals_is_said_to_be_the_lower_case_one() -> None:
    moved = Member(1, 2002, "@tech", Role.USER, 3, "labb", None)
    assert messages.group_assigned(moved, "labb") == "@tech is now in laboratory group 'labb'."
    assert messages.group_assigned(moved, "labB").endswith(
        "(Group names are lower case: 'labB' is 'labb'.)")


def test_an_unknown_command_is_named() -> None:
    assert messages.unknown_command("/foo") == (
        "I do not know the command /foo. /help lists the commands.")


def test_a_confirmation_says_what_it_confirmed_and_a_second_press_changes_nothing() -> None:
    reviewer = Member(1, 7, "@rev", Role.REVIEWER, 3, "laba", None)
    assert messages.confirmed(3, reviewer) == "✅ 3 label(s) of this result confirmed by @rev."
    assert messages.confirmed(0, reviewer).startswith(
        "Every label of this result was already confirmed or corrected")


def test_the_class_menu_says_who_gave_the_cells_current_label() -> None:
    cell = ReviewableCell(9, 1, "eosinophil", None, 0.99)
    assert messages.class_menu(cell) == "Cell 1: the bot said Eosinophil. What is it?"
    corrected = ReviewableCell(9, 1, "eosinophil", "neutrophil", 0.99)
    assert messages.class_menu(corrected) == (
        "Cell 1: an expert labelled it Neutrophil. What is it?")


def test_a_case_line_says_why_its_cells_await_review() -> None:
    photo = Photo(number=1, submission_id=5, received_at=datetime(2026, 12, 7, 9, 30),
                  status=SubmissionStatus.DONE, mode="field", counts={"monocyte": 2},
                  rbc_count=40, platelet_count=None, flagged=2, reviewed=0,
                  model_version="v1", red_cell_model=None, screen_model=None, image_sha256=None,
                  annotated_sha256=None, error=None,
                  flag_reasons={"unusual": 2, "possible_blast": 1})
    detail = CaseDetail(case_id=1, reference="H24-1", group="laba", owner="@tech",
                        created_at=datetime(2026, 12, 7, 9, 0), automatic=False, photos=[photo])
    assert ("Photo 1 (12-07 09:30): Monocyte 2 (100%) · ⚠️ 2 to review (2 unusual, 1 blast?)"
            in messages.case_text(detail))


def test_a_rejected_photo_in_a_case_gives_its_own_reason_in_one_line() -> None:
    rejected = Photo(number=2, submission_id=6, received_at=datetime(2026, 12, 7, 9, 40),
                     status=SubmissionStatus.REJECTED, mode=None, counts={}, rbc_count=None,
                     platelet_count=None, flagged=0, reviewed=0, model_version=None,
                     red_cell_model=None, screen_model=None, image_sha256=None,
                     annotated_sha256=None,
                     error="The photo is out of focus: tap the cells on the screen to focus "
                           "before shooting. Keep the phone still.")
    detail = CaseDetail(case_id=1, reference="H24-1", group="laba", owner="@tech",
                        created_at=datetime(2026, 12, 7, 9, 0), automatic=False,
                        photos=[rejected])
    assert ("Photo 2 (12-07 09:40): ❌ not analysed: The photo is out of focus: tap the cells on "
            "the screen to focus before shooting.\n") in messages.case_text(detail)


def test_models_names_the_screen_every_cell_passes_and_what_it_learnt_from() -> None:
    entry = ModelEntry(ModelRef(1, "pbc-bionet-lite0-v7", "v7.safetensors", "0" * 64),
                       ModelStatus.ACTIVE, datetime(2026, 12, 7, tzinfo=UTC), 0.992, 0.993,
                       None, None)
    text = messages.models_text([entry], screen_card(ABNORMAL_MODEL_PATH))
    assert "▶️ pbc-bionet-lite0-v7: active" in text
    screen_line = next(line for line in text.splitlines() if "screened" in line)
    assert "hv-lite0-v10-abnormal" in screen_line and "DeepAPL" in screen_line
    assert "🔎" not in messages.models_text([entry])
