"""PIN entry rules (veil.domain.pin_entry): how keys become an attempt."""

from __future__ import annotations

import pytest

from veil.domain.pin_entry import MAX_DIGITS, PinEntry, attempts_allowed


def press_all(entry: PinEntry, keys: str) -> list[str]:
    return [a for a in (entry.press(k) for k in keys) if a is not None]


def test_hash_ends_an_attempt() -> None:
    entry = PinEntry()
    assert press_all(entry, "4711#") == ["4711"]
    assert entry.digits == ""


def test_star_starts_again() -> None:
    assert press_all(PinEntry(), "12*4711#") == ["4711"]


def test_longest_pin_ends_the_attempt_without_hash() -> None:
    entry = PinEntry()
    assert press_all(entry, "1" * MAX_DIGITS) == ["1" * MAX_DIGITS]
    assert entry.digits == ""


def test_other_keys_are_ignored() -> None:
    assert press_all(PinEntry(), "4A7B1C1D#") == ["4711"]


def test_silence_finishes_what_was_typed() -> None:
    entry = PinEntry()
    press_all(entry, "47")
    assert entry.finish() == "47"
    assert entry.finish() == ""


def test_two_attempts_in_a_row() -> None:
    assert press_all(PinEntry(), "1111#2222#") == ["1111", "2222"]


@pytest.mark.parametrize(("retry", "attempts"), [(0, 1), (1, 2), (5, 6), (-1, 1)])
def test_attempts_allowed(retry: int, attempts: int) -> None:
    assert attempts_allowed(retry) == attempts
