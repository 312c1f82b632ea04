"""PIN generation. Format rules live in session_params (4 to 15 digits)."""

from __future__ import annotations

import secrets
from collections.abc import Collection


def generate_pin(length: int) -> str:
    """A uniformly random PIN of ``length`` digits (leading zeros allowed)."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def pick_pin_pair(length: int, used: Collection[str]) -> tuple[str, str] | None:
    """Two different PINs of ``length`` digits that are not in ``used`` (the PINs live on
    the chosen virtual number), or None when fewer than two are left.

    Random tries while most PINs are free; once half the space is used, a draw from the
    free ones, so a crowded number still gets its last PINs instead of a false "pool
    exhausted".
    """
    space = 10**length
    if space - len(used) < 2:
        return None
    if len(used) <= space // 2:
        taken = set(used)
        first = generate_pin(length)
        while first in taken:
            first = generate_pin(length)
        taken.add(first)
        second = generate_pin(length)
        while second in taken:
            second = generate_pin(length)
        return first, second
    free = sorted(set(f"{i:0{length}d}" for i in range(space)) - set(used))
    if len(free) < 2:
        return None
    first, second = _sample_two(free)
    return first, second


def _sample_two(items: list[str]) -> tuple[str, str]:
    first = secrets.randbelow(len(items))
    second = secrets.randbelow(len(items) - 1)
    if second >= first:
        second += 1
    return items[first], items[second]
