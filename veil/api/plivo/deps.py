"""Dependencies shared by the Plivo routes: the service context and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import AuthenticationFailed
from veil.service.accounts import Authenticator
from veil.service.context import ServiceContext


class _Basic(HTTPBasic):
    """HTTP Basic credentials, or None for a missing or unreadable header (answered with
    Plivo's error body by ``_principal``, not FastAPI's)."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:
            return None


_basic = _Basic(auto_error=False, description="auth_id and auth_token")


async def _context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def _principal(
    request: Request,
    auth_id: str,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Account:
    """The authenticated account, which must be the one named in the path."""
    if credentials is None:
        raise AuthenticationFailed(messages.AUTH_FAILED)
    authenticator: Authenticator = request.app.state.authenticator
    account = await authenticator.authenticate(credentials.username, credentials.password)
    if account.auth_id != auth_id:
        raise AuthenticationFailed(messages.AUTH_ID_MISMATCH)
    return account


ContextDep = Annotated[ServiceContext, Depends(_context)]
PrincipalDep = Annotated[Account, Depends(_principal)]


def public_url(request: Request) -> str:
    url: str = request.app.state.public_url
    return url
