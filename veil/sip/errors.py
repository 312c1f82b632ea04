"""Errors of the SIP layer."""

from __future__ import annotations


class ParseError(ValueError):
    """A message or header that does not follow RFC 3261's grammar.

    ``status`` is the response a UAS should send for a request that fails this way: 400
    unless the request is readable but names something unsupported (416 for a
    Request-URI scheme, 505 for a SIP version; RFC 3261 8.2.2.1, 21.5.20)."""

    def __init__(self, message: str = "", *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
