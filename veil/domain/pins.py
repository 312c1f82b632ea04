"""PIN generation. Format rules live in session_params (4 to 15 digits)."""

from __future__ import annotations

import secrets


def generate_pin(length: int) -> str:
    """A uniformly random PIN of ``length`` digits (leading zeros allowed)."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def generate_pin_pair(length: int) -> tuple[str, str]:
    """Two different PINs, for the first and the second party."""
    first = generate_pin(length)
    while True:
        second = generate_pin(length)
        if second != first:
            return first, second
