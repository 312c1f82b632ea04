"""PIN entry over the phone, pure: how key presses become an attempt, how many attempts a
caller has, and what the session is told (plivo-wire.md 8.1)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from veil.domain.values import PIN_LENGTH

TERMINATOR = "#"  # ends an attempt early ("followed by the hash key")
CLEAR = "*"  # starts the attempt again
MAX_DIGITS = PIN_LENGTH[1]
# Seconds of silence after which what was typed is taken as the attempt: from the end
# of the prompt to the first key, and between keys.
FIRST_KEY_TIMEOUT = 10.0
NEXT_KEY_TIMEOUT = 5.0


class PinStatus(enum.StrEnum):
    """``PinAuthenticationStatus`` values."""

    SUCCESS = "success"
    FAILED = "failed"
    AUTHORIZED_CALLER = "AuthorizedCaller"  # a known party, let through without a PIN


def attempts_allowed(pin_retry: int) -> int:
    """``pin_retry`` counts the tries after the first."""
    return 1 + max(0, pin_retry)


@dataclass(slots=True)
class PinEntry:
    """The keys of one attempt."""

    digits: str = ""

    def press(self, key: str) -> str | None:
        """Add a key; the finished attempt when it ends one (``#`` or the longest PIN),
        else None. Keys other than digits, ``#`` and ``*`` are ignored."""
        if key == TERMINATOR:
            return self.finish()
        if key == CLEAR:
            self.digits = ""
        elif key.isdigit() and len(key) == 1:
            self.digits += key
            if len(self.digits) >= MAX_DIGITS:
                return self.finish()
        return None

    def finish(self) -> str:
        attempt, self.digits = self.digits, ""
        return attempt
