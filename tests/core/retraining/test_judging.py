"""Which of a laboratory's candidate adaptations serves it."""

from core.retraining.judging import confidently_wrong, preferred

Answer = tuple[float, bool, bool]  # confidence, right, flagged


def answers(right: int, sure_wrong: int, unsure_wrong: int = 0, flagged_wrong: int = 0,
            ) -> list[Answer]:
    return ([(0.95, True, False)] * right + [(0.97, False, False)] * sure_wrong
            + [(0.6, False, False)] * unsure_wrong + [(0.99, False, True)] * flagged_wrong)


def test_only_an_unflagged_wrong_answer_of_90_percent_or_more_is_taken_at_face_value() -> None:
    assert confidently_wrong(answers(5, sure_wrong=2, unsure_wrong=3, flagged_wrong=4)) == 2


def test_the_candidate_naming_more_cells_right_serves() -> None:
    chosen = preferred({"head": True, "tail 0.6": True},
                       {"head": answers(40, 1, 9), "tail 0.6": answers(45, 1, 4)}, fast="head")
    assert chosen == "tail 0.6"


def test_more_cells_right_do_not_buy_more_confidently_wrong_answers() -> None:
    # As DeepAPL's tail at 25 cells a class: more named right, many more wrong at face value.
    chosen = preferred({"head": True, "tail 0.6": True},
                       {"head": answers(40, 0, 10), "tail 0.6": answers(44, 6, 0)}, fast="head")
    assert chosen == "head"


def test_a_candidate_that_fails_the_gate_never_serves_and_a_tie_goes_to_the_fast_one() -> None:
    assert preferred({"head": True, "tail 0.4": False},
                     {"head": answers(30, 0), "tail 0.4": answers(50, 0)}, fast="head") == "head"
    assert preferred({"tail 0.4": True, "head": True},
                     {"tail 0.4": answers(30, 0), "head": answers(30, 0)}, fast="head") == "head"
