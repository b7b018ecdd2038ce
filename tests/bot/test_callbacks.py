import pytest

from bot.callbacks import parse_numbers


@pytest.mark.parametrize(("kind", "rest", "numbers"), [
    ("case", "12", [12]),
    ("set", "7:3", [7, 3]),
    ("acc", "4503599627370495:1", [4503599627370495, 1]),  # a 52-bit Telegram user id
])
def test_the_buttons_we_send_parse_to_their_numbers(kind: str, rest: str,
                                                     numbers: list[int]) -> None:
    assert parse_numbers(kind, rest) == numbers


@pytest.mark.parametrize(("kind", "rest"), [
    ("case", "-1"), ("case", "+1"), ("case", " 1"), ("case", "1 "), ("case", "1_0"),
    ("case", "١٢"),  # Arabic-Indic digits: int() would take them
    ("case", "9" * 20), ("case", "2147483648"),  # beyond the 32-bit row ids
    ("case", ""), ("case", "1:2"), ("set", "7"), ("set", "7:3:1"), ("acc", "1"),
    ("nope", "1"),
])
def test_forged_button_data_is_refused(kind: str, rest: str) -> None:
    with pytest.raises(ValueError):
        parse_numbers(kind, rest)
