"""Who is calling: HTTP Basic authentication against the account named in the path.

A plain function the handlers await first, rather than a FastAPI dependency: resolving
dependencies measured as a third of a session read, for no behaviour a call lacks.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import AuthenticationFailed
from veil.service.accounts import Authenticator
from veil.service.context import ServiceContext


@dataclass(frozen=True, slots=True)
class Caller:
    ctx: ServiceContext
    account: Account
    public_url: str  # base of the URLs handed out (next/previous links)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` header; None if unreadable."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def caller(request: Request) -> Caller:
    """The authenticated caller, which must be the account in the path's ``{auth_id}``;
    ``AuthenticationFailed`` otherwise."""
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise AuthenticationFailed(messages.AUTH_FAILED)
    state = request.app.state
    authenticator: Authenticator = state.authenticator
    account = await authenticator.authenticate(*credentials)
    if account.auth_id != request.path_params.get("auth_id"):
        raise AuthenticationFailed(messages.AUTH_ID_MISMATCH)
    return Caller(state.ctx, account, state.public_url)
