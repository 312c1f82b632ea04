"""Thin asyncio transports: UDP and TCP on one address (RFC 3261 section 18).

They move bytes only; framing is ``StreamFramer`` and everything else is the endpoint's.
TLS is the TCP transport with an ``ssl.SSLContext`` (the seam: ``StreamTransport(ssl=...)``,
transport name ``tls``), not wired to a setting yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_module
from collections.abc import Callable
from typing import cast

from veil.sip.errors import ParseError
from veil.sip.message import StreamFramer
from veil.sip.transaction import Target, TransportError

log = logging.getLogger("veil.sip")

OnData = Callable[[bytes, Target, bool], None]  # data, source, stream-framed
OnFailure = Callable[[Target], None]


class DatagramTransport(asyncio.DatagramProtocol):
    name = "udp"

    def __init__(self, on_data: OnData) -> None:
        self._on_data = on_data
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(host, port), reuse_port=False
        )
        # (No isinstance check: uvloop's UDP transport does not subclass it.)
        self._transport = transport
        _grow_receive_buffer(transport.get_extra_info("socket"))
        sockname = transport.get_extra_info("sockname")
        return sockname[0], sockname[1]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._on_data(data, Target("udp", str(addr[0]), int(addr[1])), False)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the transaction's timers handle the loss.
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, target: Target) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportError("udp transport closed")
        self._transport.sendto(data, (target.host, target.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


RECEIVE_BUFFER = 8 * 1024 * 1024  # bytes: a burst of a few thousand datagrams


def _grow_receive_buffer(sock: socket.socket | None) -> None:
    """A bigger kernel buffer, so that a burst of requests waits instead of being
    dropped (a dropped INVITE costs the caller a 500 ms retransmission). Above
    ``net.core.rmem_max`` only root may go (SO_RCVBUFFORCE)."""
    if sock is None:
        return
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
    except (OSError, PermissionError):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class _Connection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport, target: Target | None) -> None:
        self.owner = owner
        self.target = target
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.target is None:  # accepted: the peer's address is its identity
            host, port = transport.get_extra_info("peername")[:2]
            self.target = Target(self.owner.name, str(host), int(port))
        self.owner._connections[self.target] = self
        for data in self.pending:
            self.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        assert self.target is not None and self.transport is not None
        try:
            messages = self.framer.feed(data)
        except ParseError as exc:
            # A stream that cannot be framed cannot be resynchronised: drop it.
            log.info("closing %s: %s", self.target, exc)
            self.transport.close()
            return
        for message in messages:
            self.owner._on_data(message, self.target, True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self)

    def write(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        elif self.transport.is_closing():
            raise TransportError("connection closed")
        else:
            self.transport.write(data)


class StreamTransport:
    """TCP (or TLS with ``ssl``): one listening socket, connections reused by peer
    address in both directions, and aliases so that requests towards a peer's Via
    sent-by or Contact go over the connection it opened (as RFC 5923 allows)."""

    def __init__(
        self,
        on_data: OnData,
        on_failure: OnFailure,
        *,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.name = "tls" if ssl else "tcp"
        self._ssl = ssl
        self._on_data = on_data
        self._on_failure = on_failure
        self._server: asyncio.Server | None = None
        self._connections: dict[Target, _Connection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self, None), host, port, ssl=self._ssl, reuse_address=True
        )

    def alias(self, alias: Target, actual: Target) -> None:
        connection = self._connections.get(actual)
        if connection is not None and alias not in self._connections:
            self._connections[alias] = connection

    def send(self, data: bytes, target: Target) -> None:
        connection = self._connections.get(target)
        if connection is None:
            connection = _Connection(self, target)
            self._connections[target] = connection
            task = asyncio.get_running_loop().create_task(self._connect(connection, target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        connection.write(data)

    async def _connect(self, connection: _Connection, target: Target) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, target.host, target.port, ssl=self._ssl),
                timeout=5.0,
            )
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect to %s: %s", target, exc)
            self._lost(connection)
            self._on_failure(target)

    def _lost(self, connection: _Connection) -> None:
        for key in [k for k, c in self._connections.items() if c is connection]:
            del self._connections[key]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in set(self._connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        for task in self._tasks:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
