"""The media seam: what the B2BUA asks of whatever carries the audio.

``PassThrough`` relays SDP (neutralised) so RTP flows end to end (``VEIL_MEDIA=off``).
``Anchored`` puts every call through rtpengine: each party's SDP then names only
rtpengine's address, and RTP flows party -> rtpengine -> party.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from veil.calls.sdp import discard_answer, neutralize
from veil.media.dtmf import DtmfEvent, DtmfListener
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
    """The media of one call. ``from_leg`` is "a" (the caller's side) or "b".

    Only an anchoring engine can do more than offer/answer: the rest raises
    ``MediaError`` on ``PassThrough`` (routing never asks it there)."""

    call_id: str

    async def offer(self, sdp: bytes, *, from_leg: str) -> bytes: ...

    async def answer(self, sdp: bytes, *, from_leg: str) -> bytes: ...

    async def answer_alone(self, offer: bytes) -> bytes:
        """Leg A's answer before leg B exists (an IVR, an announcement): rtpengine
        answers for B; a later bridge keeps leg A's port (port-latching)."""
        ...

    async def play(self, leg: str, path: Path) -> float:
        """Play a WAV to ``leg``; its duration in seconds."""
        ...

    async def stop_play(self, leg: str) -> None: ...

    async def block(self, leg: str, *, dtmf: bool, blocked: bool) -> None:
        """Stop (or resume) forwarding ``leg``'s DTMF (``dtmf``) or its audio."""
        ...

    def on_dtmf(self, callback: Callable[[DtmfEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with each key the parties press; returns an unsubscribe."""
        ...

    async def start_recording(self) -> None: ...

    async def close(self) -> None: ...


class MediaEngine(Protocol):
    def session(self, call_id: str) -> MediaSession: ...


class PassThroughSession:
    call_id = ""

    async def offer(self, sdp: bytes, *, from_leg: str) -> bytes:
        return neutralize(sdp)

    async def answer(self, sdp: bytes, *, from_leg: str) -> bytes:
        return neutralize(sdp)

    async def answer_alone(self, offer: bytes) -> bytes:
        raise MediaError("no media engine")

    async def play(self, leg: str, path: Path) -> float:
        raise MediaError("no media engine")

    async def stop_play(self, leg: str) -> None:
        raise MediaError("no media engine")

    async def block(self, leg: str, *, dtmf: bool, blocked: bool) -> None:
        raise MediaError("no media engine")

    def on_dtmf(self, callback: Callable[[DtmfEvent], None]) -> Callable[[], None]:
        raise MediaError("no media engine")

    async def start_recording(self) -> None:
        raise MediaError("no media engine")

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

    async def command(
        self, name: str, params: Mapping[str, Any] | None = ..., /, **kw: Any
    ) -> dict[str, Any]: ...

    async def play_media(
        self, call_id: str, from_tag: str, file: str, *, repeat: int | None = ...
    ) -> int: ...


def _other(leg: str) -> str:
    return "b" if leg == "a" else "a"


class AnchoredSession:
    """One call in rtpengine. rtpengine's call-id is Veil's own (never a leg's), and
    the two sides are tagged "a" and "b": rtpengine learns nothing about the parties."""

    def __init__(
        self, ng: NgCommands, call_id: str, dtmf: DtmfListener | None, discard_host: str
    ) -> None:
        self.ng = ng
        self.call_id = call_id
        self.dtmf = dtmf
        self.discard_host = discard_host
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

    async def answer_alone(self, offer: bytes) -> bytes:
        await self.offer(offer, from_leg="a")
        return await self.answer(discard_answer(offer, self.discard_host), from_leg="b")

    async def play(self, leg: str, path: Path) -> float:
        try:
            ms = await self.ng.play_media(self.call_id, leg, str(path))
        except (NgError, NgTimeout) as exc:
            raise MediaError(f"play media: {exc}") from exc
        return ms / 1000

    async def stop_play(self, leg: str) -> None:
        await self._command("stop media", leg)

    async def block(self, leg: str, *, dtmf: bool, blocked: bool) -> None:
        what = "DTMF" if dtmf else "media"
        await self._command(f"{'block' if blocked else 'unblock'} {what}", leg)

    def on_dtmf(self, callback: Callable[[DtmfEvent], None]) -> Callable[[], None]:
        if self.dtmf is None:
            raise MediaError("no DTMF listener")
        return self.dtmf.subscribe(self.call_id, callback)

    async def start_recording(self) -> None:
        try:
            await self.ng.command("start recording", {"call-id": self.call_id})
        except (NgError, NgTimeout) as exc:
            raise MediaError(f"start recording: {exc}") from exc

    async def _command(self, name: str, leg: str) -> None:
        try:
            await self.ng.command(name, {"call-id": self.call_id, "from-tag": leg})
        except (NgError, NgTimeout) as exc:
            raise MediaError(f"{name}: {exc}") from exc

    async def close(self) -> None:
        if not self.offered:
            return
        try:
            await self.ng.delete(self.call_id, delay=0)
        except (NgError, NgTimeout) as exc:
            log.info("rtpengine delete %s: %s", self.call_id, exc)


class Anchored:
    def __init__(
        self, ng: NgCommands, dtmf: DtmfListener | None = None, discard_host: str = "127.0.0.1"
    ) -> None:
        self.ng = ng
        self.dtmf = dtmf
        # Where leg A's audio goes while no leg B exists: Veil's own host, port 9.
        self.discard_host = discard_host

    def session(self, call_id: str) -> MediaSession:
        return AnchoredSession(self.ng, call_id, self.dtmf, self.discard_host)
