"""The media seam: what the B2BUA asks of whatever carries the audio.

``PassThrough`` relays SDP (neutralised) so RTP flows end to end (``VEIL_MEDIA=off``).
``Anchored`` puts every call through rtpengine: each party's SDP then names only
rtpengine's address, and RTP flows party -> rtpengine -> party.
"""

from __future__ import annotations

import logging
from typing import Protocol

from veil.calls.sdp import neutralize
from veil.media.ng import NgError, NgTimeout

log = logging.getLogger("veil.media")

# rtpengine's flags for every offer (sip-media.md section 3): trust the SDP's address
# (the trunk is no NAT), keep the caller's port when the far end changes (an IVR before
# the bridge needs no re-INVITE), and rewrite what would identify the other side.
OFFER_FLAGS = ["trust-address", "port-latching"]
REPLACE = ["origin", "session-connection"]


class MediaError(Exception):
    """The media engine could not do what a call needs (down, or refused the SDP)."""


class MediaSession(Protocol):
    """The media of one call. ``from_leg`` is "a" (the caller's side) or "b"."""

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


class NgCommands(Protocol):
    """What ``Anchored`` needs of an NG client (``NgClient`` or ``NgPool``)."""

    async def offer(
        self,
        call_id: str,
        from_tag: str,
        sdp: bytes,
        *,
        flags: list[str] | None = ...,
        replace: list[str] | None = ...,
        extra: dict[str, object] | None = ...,
    ) -> bytes: ...

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: bytes,
        *,
        flags: list[str] | None = ...,
        replace: list[str] | None = ...,
        extra: dict[str, object] | None = ...,
    ) -> bytes: ...

    async def delete(
        self, call_id: str, *, from_tag: str | None = ..., delay: int = ...
    ) -> object: ...


def _other(leg: str) -> str:
    return "b" if leg == "a" else "a"


class AnchoredSession:
    """One call in rtpengine. rtpengine's call-id is Veil's own (never a leg's), and
    the two sides are tagged "a" and "b": rtpengine learns nothing about the parties."""

    def __init__(self, ng: NgCommands, call_id: str) -> None:
        self.ng = ng
        self.call_id = call_id
        self.offered = False

    async def offer(self, sdp: bytes, *, from_leg: str) -> bytes:
        extra: dict[str, object] = {"to-tag": _other(from_leg)} if self.offered else {}
        self.offered = True
        try:
            out = await self.ng.offer(
                self.call_id,
                from_leg,
                neutralize(sdp),
                flags=OFFER_FLAGS,
                replace=REPLACE,
                extra=extra,
            )
        except (NgError, NgTimeout) as exc:
            raise MediaError(f"offer: {exc}") from exc
        return neutralize(out)

    async def answer(self, sdp: bytes, *, from_leg: str) -> bytes:
        try:
            out = await self.ng.answer(
                self.call_id,
                _other(from_leg),
                from_leg,
                neutralize(sdp),
                flags=OFFER_FLAGS,
                replace=REPLACE,
            )
        except (NgError, NgTimeout) as exc:
            raise MediaError(f"answer: {exc}") from exc
        return neutralize(out)

    async def close(self) -> None:
        if not self.offered:
            return
        try:
            await self.ng.delete(self.call_id, delay=0)
        except (NgError, NgTimeout) as exc:
            log.info("rtpengine delete %s: %s", self.call_id, exc)


class Anchored:
    def __init__(self, ng: NgCommands) -> None:
        self.ng = ng

    def session(self, call_id: str) -> MediaSession:
        return AnchoredSession(self.ng, call_id)
