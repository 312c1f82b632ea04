"""The media seam: what the B2BUA asks of whatever carries the audio.

``PassThrough`` relays SDP (neutralised) so RTP flows end to end. The rtpengine
engine (next issue) implements the same protocol and anchors media instead.
"""

from __future__ import annotations

from typing import Protocol

from veil.calls.sdp import neutralize


class MediaSession(Protocol):
    """The media of one call. ``leg`` is "a" (the caller's side) or "b"."""

    async def offer(self, sdp: bytes, *, from_leg: str) -> bytes: ...

    async def answer(self, sdp: bytes, *, from_leg: str) -> bytes: ...

    async def close(self) -> None: ...


class MediaEngine(Protocol):
    def session(self, call_id: str) -> MediaSession: ...


class PassThroughSession:
    async def offer(self, sdp: bytes, *, from_leg: str) -> bytes:
        return neutralize(sdp)

    async def answer(self, sdp: bytes, *, from_leg: str) -> bytes:
        return neutralize(sdp)

    async def close(self) -> None:
        return None


class PassThrough:
    def session(self, call_id: str) -> MediaSession:
        return PassThroughSession()
