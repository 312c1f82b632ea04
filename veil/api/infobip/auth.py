"""Who is calling: ``Authorization: Basic base64(auth_id:auth_token)`` or ``Authorization:
App <api key>``, where the API key is the account's auth_token (Infobip's SDKs send the
latter). Any failure is a 401 with Infobip's "Invalid login details"."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from veil.api.plivo.caller import basic_credentials
from veil.config import Settings
from veil.domain import infobip as rules
from veil.domain.accounts import Account
from veil.domain.errors import AuthenticationFailed
from veil.service.accounts import Authenticator
from veil.service.context import ServiceContext


@dataclass(frozen=True, slots=True)
class Caller:
    ctx: ServiceContext
    account: Account
    settings: Settings


async def caller(request: Request) -> Caller:
    """The authenticated caller; ``AuthenticationFailed`` otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    state = request.app.state
    authenticator: Authenticator = state.authenticator
    try:
        if scheme.lower() == "app":
            account = await authenticator.authenticate_api_key(value.strip())
        elif (credentials := basic_credentials(header)) is not None:
            account = await authenticator.authenticate(*credentials)
        else:
            raise AuthenticationFailed(rules.INVALID_LOGIN)
    except AuthenticationFailed:
        raise AuthenticationFailed(rules.INVALID_LOGIN) from None
    return Caller(state.ctx, account, state.settings)
