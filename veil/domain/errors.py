"""The errors a client can cause, with the HTTP status each suggests.

Raised anywhere below the API layer; one exception handler per API turns them into
that API's JSON body (Plivo: ``{"api_id": ..., "error": message}``).
"""

from __future__ import annotations


class VeilError(Exception):
    """Base of every client-visible error. ``status_hint`` is the HTTP status to answer."""

    status_hint = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(VeilError):
    status_hint = 400


class AuthenticationFailed(VeilError):
    status_hint = 401


class NotFound(VeilError):
    status_hint = 404


class MethodNotAllowed(VeilError):
    status_hint = 405


class Conflict(VeilError):
    """A state the request cannot be applied to (still answered as 400 by the Plivo API)."""

    status_hint = 400
