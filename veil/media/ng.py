"""A client for rtpengine's NG control protocol over UDP.

Each request is ``<cookie> <bencoded dict>`` in one datagram; the reply carries the same
cookie. rtpengine caches replies by cookie and answers a repeated cookie with the cached
reply, without running the command again. That makes retrying a timed-out request with
the *same* cookie safe (an ``offer`` is never applied twice) and makes cookies that are
unique across clients and restarts a must: a reused cookie gets someone else's old reply.
Cookies here are a random per-client prefix plus a counter.

``NgClient`` talks to one rtpengine; ``NgPool`` spreads calls over several and fails over
to the next engine when one does not answer a new call's ``offer``. Both have the same
typed commands (``offer``, ``answer``, ``delete``, ``play_media``, ...) on top of the
generic ``command(name, params, **kw)``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, cast

from veil.media import bencode

__all__ = [
    "DEFAULT_FLAGS",
    "DEFAULT_REPLACE",
    "MAX_IN_FLIGHT",
    "NgClient",
    "NgError",
    "NgException",
    "NgPool",
    "NgTimeout",
    "parse_engines",
]

logger = logging.getLogger(__name__)

# trust-address: use the address in the SDP, not the NG request's source address (the B2BUA
# is not where the media comes from). port-latching: keep a party's rtpengine port when
# the other side changes (re-offer after an IVR), so the party needs no re-INVITE.
DEFAULT_FLAGS: tuple[str, ...] = ("trust-address", "port-latching")
# Replace o= and the session-level c= too, so no party address leaks to the other side.
DEFAULT_REPLACE: tuple[str, ...] = ("origin", "session-connection")
# rtpengine reads its NG socket from one buffer: a burst of 200 simultaneous offers lost
# datagrams most of the time on loopback (each loss costs a retry timeout), 100 never did.
MAX_IN_FLIGHT = 64


class NgException(Exception):
    """Base of the NG failures: an error reply, no reply, or a closed client."""


class NgError(NgException):
    """rtpengine answered with an error (``result`` other than ``ok``/``pong``)."""

    def __init__(self, command: str, reason: str, reply: Mapping[str, Any]) -> None:
        super().__init__(f"rtpengine {command!r} failed: {reason}")
        self.command = command
        self.reason = reason
        self.reply = dict(reply)


class NgTimeout(NgException, TimeoutError):
    """No reply from rtpengine after all tries."""


def _message(name: str, params: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    """The request dict. Keyword names may use '_' for '-' (call_id -> 'call-id'); keys
    with spaces ('delete delay', 'record call') go in ``params``."""
    message: dict[str, Any] = dict(params or {})
    message.update((key.replace("_", "-"), value) for key, value in kw.items())
    message["command"] = name
    return message


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise NgException(f"rtpengine reply has no usable {what!r}: {value!r}")


def _sdp_params(
    sdp: bytes,
    flags: Sequence[str] | None,
    replace: Sequence[str] | None,
    record: bool,
    metadata: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "sdp": sdp,
        "flags": list(DEFAULT_FLAGS if flags is None else flags),
        "replace": list(DEFAULT_REPLACE if replace is None else replace),
    }
    if record:
        params["record call"] = "yes"
    if metadata is not None:
        params["metadata"] = metadata
    params.update(extra or {})
    return params


class _Commands:
    """The typed NG commands, built on ``command()`` (one engine or a pool)."""

    async def command(
        self, name: str, params: Mapping[str, Any] | None = None, /, **kw: Any
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def ping(self) -> None:
        reply = await self.command("ping")
        if reply.get("result") != "pong":
            raise NgError("ping", f"unexpected result {reply.get('result')!r}", reply)

    async def offer(
        self,
        call_id: str,
        from_tag: str,
        sdp: bytes,
        *,
        to_tag: str | None = None,
        flags: Sequence[str] | None = None,
        replace: Sequence[str] | None = None,
        record: bool = False,
        metadata: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Anchor the offerer's SDP; returns the SDP to send to the answerer.

        ``flags``/``replace`` default (None) to DEFAULT_FLAGS/DEFAULT_REPLACE. ``to_tag`` is
        for a re-offer inside an existing dialogue (IVR -> bridge). ``extra`` adds or
        overrides raw NG keys."""
        params = _sdp_params(sdp, flags, replace, record, metadata, extra)
        params.update({"call-id": call_id, "from-tag": from_tag})
        if to_tag is not None:
            params["to-tag"] = to_tag
        reply = await self.command("offer", params)
        return _as_bytes(reply.get("sdp"), "sdp")

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: bytes,
        *,
        flags: Sequence[str] | None = None,
        replace: Sequence[str] | None = None,
        record: bool = False,
        metadata: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Anchor the answerer's SDP; returns the SDP to send back to the offerer.

        ``from_tag`` is the offer's from-tag (the dialogue's, not the answerer's)."""
        params = _sdp_params(sdp, flags, replace, record, metadata, extra)
        params.update({"call-id": call_id, "from-tag": from_tag, "to-tag": to_tag})
        reply = await self.command("answer", params)
        return _as_bytes(reply.get("sdp"), "sdp")

    async def delete(
        self, call_id: str, *, from_tag: str | None = None, delay: int = 0
    ) -> dict[str, Any]:
        """Delete the call (or, with ``from_tag``, that branch). ``delay`` is in seconds;
        rtpengine's own default is 30 s, which would keep the ports busy after a hangup."""
        params: dict[str, Any] = {"call-id": call_id, "delete delay": delay}
        if from_tag is not None:
            params["from-tag"] = from_tag
        return await self.command("delete", params)

    async def query(self, call_id: str) -> dict[str, Any]:
        return await self.command("query", {"call-id": call_id})

    async def play_media(
        self, call_id: str, from_tag: str, file: str, *, repeat: int | None = None
    ) -> int:
        """Play ``file`` (absolute path on rtpengine's host) to the party ``from_tag``.

        Returns the duration in ms as rtpengine reports it, 0 if it could not tell."""
        params: dict[str, Any] = {"call-id": call_id, "from-tag": from_tag, "file": file}
        if repeat is not None:
            params["repeat-times"] = repeat
        reply = await self.command("play media", params)
        duration = reply.get("duration")
        return duration if isinstance(duration, int) else 0

    async def stop_media(self, call_id: str, from_tag: str) -> dict[str, Any]:
        return await self.command("stop media", {"call-id": call_id, "from-tag": from_tag})

    async def block_dtmf(self, call_id: str, from_tag: str) -> None:
        """Stop forwarding ``from_tag``'s RFC 4733 events; they are still reported to
        dtmf-log-dest, which is what PIN entry needs."""
        await self.command("block DTMF", {"call-id": call_id, "from-tag": from_tag})

    async def unblock_dtmf(self, call_id: str, from_tag: str) -> None:
        await self.command("unblock DTMF", {"call-id": call_id, "from-tag": from_tag})

    async def start_recording(self, call_id: str) -> None:
        await self.command("start recording", {"call-id": call_id})

    async def stop_recording(self, call_id: str) -> None:
        await self.command("stop recording", {"call-id": call_id})


class NgClient(_Commands, asyncio.DatagramProtocol):
    """One rtpengine's NG port. Create with ``await NgClient.connect(host, port)``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 1.0,
        retries: int = 2,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # Random prefix: cookies stay unique across clients, processes and restarts.
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)
        self._pending: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = 1.0,  # noqa: ASYNC109 - the per-try timeout of later commands
        retries: int = 2,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> NgClient:
        """A client for rtpengine at host:port. ``timeout`` is per try; a command is sent
        ``1 + retries`` times at most; at most ``max_in_flight`` commands are outstanding
        (more wait their turn, outside the timeout)."""
        client = cls(host, port, timeout=timeout, retries=retries, max_in_flight=max_in_flight)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: client, remote_addr=(host, port))
        return client

    def __repr__(self) -> str:
        return f"<NgClient {self.host}:{self.port}>"

    async def __aenter__(self) -> NgClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._closed = True
        self._fail_pending(NgException("NG client closed"))

    # --- asyncio.DatagramProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._fail_pending(NgException(f"NG socket lost: {exc}" if exc else "NG client closed"))

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket, ICMP port unreachable shows up here. It cannot be tied
        # to a request, so the retries and the timeout decide.
        logger.debug("NG %s:%s: %s", self.host, self.port, exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        cookie, sep, body = data.partition(b" ")
        future = self._pending.get(cookie)
        if not sep or future is None or future.done():
            # A late answer to a retry we already have a reply for, or garbage.
            logger.debug("NG %s:%s: unmatched datagram %r", self.host, self.port, data[:60])
            return
        try:
            reply = bencode.decode(body, text=True)
        except bencode.BencodeError as exc:
            logger.warning("NG %s:%s: undecodable reply: %s", self.host, self.port, exc)
            return
        if not isinstance(reply, dict) or not all(isinstance(k, str) for k in reply):
            logger.warning("NG %s:%s: reply is not a dictionary", self.host, self.port)
            return
        future.set_result({str(k): v for k, v in reply.items()})

    def _fail_pending(self, exc: NgException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    # --- requests ---

    def _next_cookie(self) -> bytes:
        return f"{self._prefix}_{next(self._counter)}".encode()

    async def command(
        self, name: str, params: Mapping[str, Any] | None = None, /, **kw: Any
    ) -> dict[str, Any]:
        """Send ``{"command": name, **params, **kw}`` and return rtpengine's reply.

        Keyword names use '_' for '-' (``call_id=`` sends 'call-id'); keys with spaces
        ('delete delay', 'record call') go in ``params``. String values of the reply are
        ``str`` (``bytes`` if not UTF-8). Raises ``NgError`` for an error reply and
        ``NgTimeout`` when no try got an answer."""
        if self._closed or self._transport is None:
            raise NgException("NG client closed")
        message = _message(name, params, kw)
        cookie = self._next_cookie()
        datagram = cookie + b" " + bencode.encode(message)
        async with self._in_flight:
            reply = await self._exchange(name, cookie, datagram)
        result = reply.get("result")
        if result not in ("ok", "pong"):
            reason = reply.get("error-reason") or reply.get("message") or f"result {result!r}"
            raise NgError(name, str(reason), reply)
        if "warning" in reply:
            logger.warning("rtpengine %s:%s %r: %s", self.host, self.port, name, reply["warning"])
        return reply

    async def _exchange(self, name: str, cookie: bytes, datagram: bytes) -> dict[str, Any]:
        if self._closed or self._transport is None:
            raise NgException("NG client closed")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = future
        try:
            for _attempt in range(1 + self.retries):
                # The same cookie every time: rtpengine runs the command once and replays
                # its cached reply for the repeats.
                self._transport.sendto(datagram)
                done, _ = await asyncio.wait({future}, timeout=self.timeout)
                if done:
                    return future.result()
            raise NgTimeout(
                f"no reply from rtpengine {self.host}:{self.port} to {name!r} "
                f"after {1 + self.retries} tries of {self.timeout}s"
            )
        finally:
            self._pending.pop(cookie, None)
            if not future.done():
                future.cancel()


def parse_engines(spec: str) -> list[tuple[str, int]]:
    """``"udp:10.0.0.1:2223,udp:[::1]:2223,host:2223"`` -> [(host, port), ...]."""
    engines: list[tuple[str, int]] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        scheme, sep, rest = item.partition(":")
        if sep and scheme.lower() == "udp":
            item = rest
        elif sep and scheme.lower() in ("tcp", "ws", "wss", "http", "https"):
            raise ValueError(f"only UDP NG transport is supported: {raw!r}")
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected [udp:]host:port, got {raw!r}")
        engines.append((host.removeprefix("[").removesuffix("]"), int(port)))
    if not engines:
        raise ValueError("no rtpengine given")
    return engines


class NgPool(_Commands):
    """Several rtpengines; each call lives on one of them.

    A call's engine is chosen by a stable hash of its Call-ID (the same in every process).
    If that engine does not answer a new call's ``offer``, the next ones are tried, and the
    engine that took the offer gets the call's later commands. That stickiness is kept in
    this process only and dropped on a whole-call ``delete``. Error replies are not failed
    over: the engine answered, and the call state lives there.
    """

    def __init__(self, clients: Sequence[NgClient]) -> None:
        if not clients:
            raise ValueError("an NgPool needs at least one engine")
        self.clients = list(clients)
        self._owners: dict[str, NgClient] = {}

    @classmethod
    async def connect(
        cls,
        engines: str | Sequence[tuple[str, int]],
        *,
        timeout: float = 1.0,  # noqa: ASYNC109 - the per-try timeout of later commands
        retries: int = 2,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> NgPool:
        addresses = parse_engines(engines) if isinstance(engines, str) else list(engines)
        clients: list[NgClient] = []
        try:
            for host, port in addresses:
                client = await NgClient.connect(
                    host, port, timeout=timeout, retries=retries, max_in_flight=max_in_flight
                )
                clients.append(client)
        except BaseException:
            for client in clients:
                client.close()
            raise
        return cls(clients)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self._owners.clear()

    async def __aenter__(self) -> NgPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def candidates(self, call_id: str) -> list[NgClient]:
        """The engines in the order a new call tries them."""
        start = zlib.crc32(call_id.encode()) % len(self.clients)
        return self.clients[start:] + self.clients[:start]

    def engine_for(self, call_id: str) -> NgClient:
        """The engine that has (or would get) the call."""
        return self._owners.get(call_id) or self.candidates(call_id)[0]

    async def command(
        self, name: str, params: Mapping[str, Any] | None = None, /, **kw: Any
    ) -> dict[str, Any]:
        message = _message(name, params, kw)
        del message["command"]
        call_id = message.get("call-id")
        if not isinstance(call_id, str):
            # Not about a call (ping, statistics): any engine that answers will do.
            return await self._first_answer(self.clients, name, message)
        if name == "offer" and call_id not in self._owners:
            reply, engine = await self._first_answer_from(self.candidates(call_id), name, message)
            self._owners[call_id] = engine
            return reply
        engine = self.engine_for(call_id)
        try:
            return await engine.command(name, message)
        finally:
            if name == "delete" and "from-tag" not in message:
                self._owners.pop(call_id, None)

    async def _first_answer(
        self, engines: Sequence[NgClient], name: str, message: Mapping[str, Any]
    ) -> dict[str, Any]:
        reply, _ = await self._first_answer_from(engines, name, message)
        return reply

    async def _first_answer_from(
        self, engines: Sequence[NgClient], name: str, message: Mapping[str, Any]
    ) -> tuple[dict[str, Any], NgClient]:
        timeout: NgTimeout | None = None
        for engine in engines:
            try:
                return await engine.command(name, message), engine
            except NgTimeout as exc:
                logger.warning("rtpengine %r did not answer %r; trying the next", engine, name)
                timeout = exc
        assert timeout is not None
        raise timeout
