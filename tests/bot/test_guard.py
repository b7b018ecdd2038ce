"""The guard's check of command arguments, before any handler or database sees them."""

from __future__ import annotations

import pytest

from bot.guard import arguments_fit


@pytest.mark.parametrize("args", [["C-2026-0012"], ["2002", "lab-b"], ["Müller", "ward", "3"],
                                  ["hv-lite0-v9-abnormal"]])
def test_names_references_and_versions_fit(args: list[str]) -> None:
    assert arguments_fit(args)


@pytest.mark.parametrize("args", [["a\x00b"], ["\u200b" * 1200], ["x" * 65], ["ab\u202ecd"],
                                  ["y" * 60, "z" * 60, "w" * 60]])
def test_invisible_control_or_overlong_arguments_do_not(args: list[str]) -> None:
    assert not arguments_fit(args)
