"""Identifiers Veil hands out, in the shapes Plivo's SDKs check.

The Python SDK refuses an auth_id that is not 20 characters starting with MA or SA
(plivo-wire.md section 2.3), so Veil's have exactly that shape.
"""

from __future__ import annotations

import re
import secrets
import uuid

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
AUTH_ID_LENGTH = 20
MAIN_PREFIX = "MA"
SUB_PREFIX = "SA"


def new_auth_id(*, sub: bool) -> str:
    prefix = SUB_PREFIX if sub else MAIN_PREFIX
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(AUTH_ID_LENGTH - 2))


def new_auth_token() -> str:
    """40 characters, like Plivo's tokens; about 238 bits of entropy."""
    alphabet = _ALPHABET + "abcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def new_uuid() -> str:
    return str(uuid.uuid4())


_AUTH_ID = re.compile(r"(MA|SA)[A-Z0-9]{18}")


def is_auth_id(text: str) -> bool:
    """Whether ``text`` has the shape of an auth_id (checked before any lookup)."""
    return _AUTH_ID.fullmatch(text) is not None


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def new_number_key() -> str:
    """32 upper-case hex digits, the shape of Infobip's numberKey and actionKey."""
    return uuid.uuid4().hex.upper()
