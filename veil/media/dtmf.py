"""DTMF digits reported by rtpengine (its ``dtmf-log-dest`` option).

rtpengine sends one JSON datagram per RFC 4733 event it sees, also while the event is
blocked from reaching the other party (``block DTMF``), which is what PIN entry needs:

    {"callid": "...", "source_tag": "A", "tags": ["A", "B"], "type": "DTMF",
     "timestamp": 1795631354, "source_ip": "127.0.0.1", "event": 1, "duration": 80,
     "volume": 10}

``duration`` is in milliseconds; ``volume`` is the RFC 4733 value (-dBm0, 0 is loudest).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["DIGITS", "DtmfCallback", "DtmfEvent", "DtmfListener", "parse_event"]

logger = logging.getLogger(__name__)

# RFC 4733 section 3.2: events 0-9 are the digits, then *, #, A-D.
DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    call_id: str
    source_tag: str  # the SIP tag of the party that pressed the key
    digit: str  # '0'-'9', '*', '#', 'A'-'D'
    duration: int  # ms
    volume: int


DtmfCallback = Callable[[DtmfEvent], None]


def _int(value: object) -> int | None:
    # bool is an int to isinstance, but JSON true is not an event number.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_event(data: bytes) -> DtmfEvent | None:
    """The event in one rtpengine datagram, or None if it is not a valid DTMF event."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(raw, dict):
        return None
    doc = cast(dict[str, Any], raw)
    if doc.get("type", "DTMF") != "DTMF":
        return None
    call_id, tag = doc.get("callid"), doc.get("source_tag")
    if not (isinstance(call_id, str) and call_id and isinstance(tag, str)):
        return None
    event = _int(doc.get("event"))
    duration, volume = _int(doc.get("duration", 0)), _int(doc.get("volume", 0))
    if event is None or duration is None or volume is None or not 0 <= event < len(DIGITS):
        return None
    return DtmfEvent(call_id, tag, DIGITS[event], duration, volume)


class DtmfListener(asyncio.DatagramProtocol):
    """Receives rtpengine's DTMF datagrams and hands each event to the call's subscribers.

    Callbacks run in the event loop and should be quick (e.g. put into a queue). Events for
    calls nobody subscribed to are dropped; malformed datagrams are ignored.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, list[DtmfCallback]] = {}
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(cls, host: str, port: int) -> DtmfListener:
        """Listen on host:port (port 0 picks one; see ``address``)."""
        listener = cls()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: listener, local_addr=(host, port))
        return listener

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("DtmfListener is not listening")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> DtmfListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, call_id: str, callback: DtmfCallback) -> Callable[[], None]:
        """Call ``callback`` for each digit of ``call_id``; returns the unsubscribe function
        (safe to call more than once)."""
        self._subscribers.setdefault(call_id, []).append(callback)

        def unsubscribe() -> None:
            callbacks = self._subscribers.get(call_id)
            if callbacks is None or callback not in callbacks:
                return
            callbacks.remove(callback)
            if not callbacks:
                del self._subscribers[call_id]

        return unsubscribe

    # --- asyncio.DatagramProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        event = parse_event(data)
        if event is None:
            logger.debug("ignoring datagram from %s that is not a DTMF event: %r", addr, data[:80])
            return
        # A copy: a callback may unsubscribe (itself or others) while we iterate.
        for callback in list(self._subscribers.get(event.call_id, ())):
            try:
                callback(event)
            except Exception:
                logger.exception("DTMF subscriber for call %s failed", event.call_id)
