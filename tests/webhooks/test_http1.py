"""The callback HTTP client (veil.webhooks.http1) against a real TCP server of the test
that answers as each test scripts it: keep-alive, a server closing idle connections,
large and broken responses, Basic auth from the URL, and a timeout mid-response."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from veil.webhooks.http1 import MAX_BODY, CallbackClient, CallbackHttpError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRetry-After: 7\r\n\r\nok"


@dataclass
class Seen:
    head: str
    body: bytes
    connection: int


@dataclass
class Server:
    """Each connection gets ``answer(request number on it)``; None closes it."""

    answer: Callable[[int], bytes | None]
    after_answer_close: bool = False
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        on_this = 0
        try:
            while True:
                try:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.seen.append(Seen(head, body, number))
                reply = self.answer(on_this)
                on_this += 1
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if self.after_answer_close:
                    return
        finally:
            writer.close()


async def serving(server: Server, run: Callable[[str], Awaitable[None]]) -> None:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        await run(f"http://127.0.0.1:{server.port}")
    finally:
        listener.close()
        await listener.wait_closed()


def test_requests_reuse_one_kept_alive_connection() -> None:
    server = Server(lambda _n: OK)

    async def run(base: str) -> None:
        client = CallbackClient(user_agent="Veil-test")
        first = await client.request(
            "POST", f"{base}/cb?x=1", [("X-Plivo-Signature-V3", "s")], b"a=1"
        )
        second = await client.request("GET", f"{base}/cb?EventName=E&x=1", [], b"")
        await client.aclose()
        assert (first.status, first.headers["retry-after"]) == (200, "7")
        assert second.status == 200

    asyncio.run(serving(server, run))
    assert server.connections == 1
    post, get = server.seen
    assert post.head.startswith("POST /cb?x=1 HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}" in post.head.lower()
    assert "user-agent: veil-test" in post.head.lower()
    assert "x-plivo-signature-v3: s" in post.head.lower()
    assert post.body == b"a=1"
    assert get.head.startswith("GET /cb?EventName=E&x=1 HTTP/1.1\r\n")


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    server = Server(lambda _n: OK, after_answer_close=True)

    async def run(base: str) -> None:
        client = CallbackClient()
        for _ in range(3):
            assert (await client.request("POST", f"{base}/cb", [], b"a=1")).status == 200
            await asyncio.sleep(0.05)  # the server's FIN arrives
        await client.aclose()

    asyncio.run(serving(server, run))
    assert len(server.seen) == 3  # each request sent once, on a new connection
    assert server.connections == 3


def test_a_large_response_body_is_not_read_and_its_connection_not_kept() -> None:
    big = b"x" * (2 * MAX_BODY)
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    answers = iter([answer, OK])
    server = Server(lambda _n: next(answers))

    async def run(base: str) -> None:
        client = CallbackClient()
        assert (await client.request("POST", f"{base}/cb", [], b"")).status == 500
        assert (await client.request("POST", f"{base}/cb", [], b"")).status == 200
        await client.aclose()

    asyncio.run(serving(server, run))
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer", [b"NOT HTTP AT ALL\r\n\r\n", None], ids=["garbage", "closed before answering"]
)
def test_a_broken_answer_is_an_error(answer: bytes | None) -> None:
    server = Server(lambda _n: answer)

    async def run(base: str) -> None:
        client = CallbackClient()
        with pytest.raises(CallbackHttpError):
            await client.request("POST", f"{base}/cb", [], b"a=1")
        await client.aclose()

    asyncio.run(serving(server, run))


def test_nobody_listening_is_an_os_error() -> None:
    async def run() -> None:
        listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        listener.close()
        await listener.wait_closed()
        with pytest.raises(OSError):
            await CallbackClient().request("POST", f"http://127.0.0.1:{port}/cb", [], b"")

    asyncio.run(run())


def test_credentials_in_the_url_become_basic_auth() -> None:
    server = Server(lambda _n: OK)

    async def run(base: str) -> None:
        url = base.replace("http://", "http://hook%20user:s%3Acret@") + "/cb"
        client = CallbackClient()
        assert (await client.request("POST", url, [], b"")).status == 200
        await client.aclose()

    asyncio.run(serving(server, run))
    expected = base64.b64encode(b"hook user:s:cret").decode()
    assert f"authorization: basic {expected}".lower() in server.seen[0].head.lower()
    assert "hook" not in server.seen[0].head.split("\r\n")[0]


def test_a_timeout_mid_response_closes_the_connection() -> None:
    calls = 0

    def answer(_n: int) -> bytes:
        nonlocal calls
        calls += 1
        # The first answer promises a body that never comes.
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab" if calls == 1 else OK

    server = Server(answer)

    async def run(base: str) -> None:
        client = CallbackClient()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.request("POST", f"{base}/cb", [], b"")
        assert (await client.request("POST", f"{base}/cb", [], b"")).status == 200
        await client.aclose()

    asyncio.run(serving(server, run))
    assert server.connections == 2  # the half-read connection was not reused
