"""The NG client (veil.media.ng) and the DTMF listener (veil.media.dtmf), mostly against a
real rtpengine (tests/media/conftest.py). Fake NG servers cover what a healthy rtpengine
cannot show: lost datagrams, replies out of order, garbage."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from tests.media.conftest import Rtpengine, free_udp_port
from veil.media import bencode
from veil.media.dtmf import DtmfEvent, DtmfListener, parse_event
from veil.media.ng import NgClient, NgError, NgException, NgPool, NgTimeout, parse_engines

HOST = "127.0.0.1"
PARTY_A = "192.0.2.10"  # TEST-NET-1: only ever written into SDP, never sent to
PARTY_B = "192.0.2.20"


def new_call_id() -> str:
    return f"test-{uuid.uuid4().hex}"


def g711_sdp(address: str, port: int, session: int, payloads: str = "0 8 101") -> bytes:
    names = {"0": "PCMU/8000", "8": "PCMA/8000", "101": "telephone-event/8000"}
    lines = [
        "v=0",
        f"o=- {session} 1 IN IP4 {address}",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {payloads}",
        *(f"a=rtpmap:{pt} {names[pt]}" for pt in payloads.split()),
        "a=fmtp:101 0-16",
        "a=sendrecv",
        "",
    ]
    return "\r\n".join(lines).encode()


def media_port(sdp: bytes) -> int:
    found = re.search(rb"^m=audio (\d+) ", sdp, re.M)
    assert found, sdp
    return int(found.group(1))


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


async def recv_all(sock: socket.socket, quiet: float, most: float = 5.0) -> list[bytes]:
    """What arrives until nothing has for ``quiet`` seconds, or ``most`` seconds passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + most
    got: list[bytes] = []
    while loop.time() < deadline:
        try:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 4096), quiet)
        except TimeoutError:
            break
        got.append(data)
    return got


@asynccontextmanager
async def ng_client(engine: Rtpengine, **kw: Any) -> AsyncIterator[NgClient]:
    client = await NgClient.connect(engine.host, engine.ng_port, **kw)
    try:
        yield client
    finally:
        client.close()


# --- against the real rtpengine -----------------------------------------------------------


def test_ping(rtpengine: Rtpengine) -> None:
    async def go() -> dict[str, Any]:
        async with ng_client(rtpengine) as ng:
            await ng.ping()
            return await ng.command("ping")

    assert asyncio.run(go()) == {"result": "pong"}


@pytest.mark.parametrize("answered", ["0 101", "8 101"], ids=["PCMU", "PCMA"])
def test_offer_answer_query_delete(rtpengine: Rtpengine, answered: str) -> None:
    call_id = new_call_id()
    offer_sdp = g711_sdp(PARTY_A, 30000, 1111)
    answer_sdp = g711_sdp(PARTY_B, 30100, 2222, answered)

    async def go() -> tuple[bytes, bytes, dict[str, Any]]:
        async with ng_client(rtpengine) as ng:
            to_b = await ng.offer(call_id, "A", offer_sdp)
            to_a = await ng.answer(call_id, "A", "B", answer_sdp)
            state = await ng.query(call_id)
            assert await ng.delete(call_id) == {"result": "ok"}
            with pytest.raises(NgError, match="Unknown call-id"):
                await ng.query(call_id)
            return to_b, to_a, state

    to_b, to_a, state = asyncio.run(go())
    for sdp in (to_b, to_a):
        # Every address is rtpengine's (replace origin + session-connection); no party leaks.
        assert b"192.0.2." not in sdp
        assert re.findall(rb"^c=(.*)\r$", sdp, re.M) == [b"IN IP4 127.0.0.1"]
        assert re.search(rb"^o=- \d+ \d+ IN IP4 127\.0\.0\.1\r$", sdp, re.M)
        assert rtpengine.port_min <= media_port(sdp) <= rtpengine.port_max
        assert b"a=rtpmap:101 telephone-event/8000" in sdp
    assert media_port(to_b) != media_port(to_a)
    assert re.search(rb"^m=audio \d+ RTP/AVP 0 8 101\r$", to_b, re.M)
    assert re.search(rb"^m=audio \d+ RTP/AVP " + answered.encode() + rb"\r$", to_a, re.M)

    # query: both tags, each with the party's advertised port and rtpengine's local port.
    tags = state["tags"]
    assert set(tags) == {"A", "B"}
    a_rtp = tags["A"]["medias"][0]["streams"][0]
    b_rtp = tags["B"]["medias"][0]["streams"][0]
    assert a_rtp["advertised endpoint"] == {"address": PARTY_A, "family": "IPv4", "port": 30000}
    assert b_rtp["advertised endpoint"] == {"address": PARTY_B, "family": "IPv4", "port": 30100}
    assert a_rtp["local port"] == media_port(to_a)  # A sends to the port in A's SDP
    assert b_rtp["local port"] == media_port(to_b)


def test_delete_branch_with_delay_key(rtpengine: Rtpengine) -> None:
    """'delete delay' is honoured: 0 deletes at once, even for a branch (from-tag)."""
    call_id = new_call_id()

    async def go() -> None:
        async with ng_client(rtpengine) as ng:
            await ng.offer(call_id, "A", g711_sdp(PARTY_A, 30000, 1))
            await ng.answer(call_id, "A", "B", g711_sdp(PARTY_B, 30100, 2))
            await ng.delete(call_id, from_tag="A", delay=0)
            with pytest.raises(NgError, match="Unknown call-id"):
                await ng.query(call_id)

    asyncio.run(go())


def test_error_reply_raises_ng_error_with_the_reason(rtpengine: Rtpengine) -> None:
    async def go() -> NgError:
        async with ng_client(rtpengine) as ng:
            with pytest.raises(NgError) as caught:
                await ng.answer(new_call_id(), "A", "B", g711_sdp(PARTY_B, 30100, 2))
            return caught.value

    error = asyncio.run(go())
    assert error.command == "answer"
    assert error.reason == "Unknown call-id"
    assert error.reply == {"result": "error", "error-reason": "Unknown call-id"}
    assert "Unknown call-id" in str(error)


def test_play_media_reaches_the_party(rtpengine: Rtpengine, tone_wav: Path) -> None:
    call_id = new_call_id()
    a, b = udp_socket(), udp_socket()

    async def go() -> tuple[int, int, list[bytes], int]:
        async with ng_client(rtpengine) as ng:
            await ng.offer(call_id, "A", g711_sdp(HOST, a.getsockname()[1], 1))
            await ng.answer(call_id, "A", "B", g711_sdp(HOST, b.getsockname()[1], 2, "0 101"))
            duration = await ng.play_media(call_id, "A", str(tone_wav))
            heard = await recv_all(a, 0.3, most=0.3)
            await ng.stop_media(call_id, "A")
            # repeat-times is accepted; the reported duration stays the file's.
            repeated = await ng.play_media(call_id, "A", str(tone_wav), repeat=3)
            await ng.stop_media(call_id, "A")
            with pytest.raises(NgError, match="Failed to start media playback"):
                await ng.play_media(call_id, "A", str(tone_wav.with_name("missing.wav")))
            b_heard = len(await recv_all(b, 0.05))
            await ng.delete(call_id)
            return duration, repeated, heard, b_heard

    try:
        duration, repeated, heard, b_heard = asyncio.run(go())
    finally:
        a.close()
        b.close()
    assert 950 <= duration <= 1050
    assert repeated == duration
    # 20 ms PCMU frames (PT 0, A's first codec) arrive at A; B hears nothing of it.
    assert len(heard) >= 10
    assert all(len(p) == 12 + 160 and p[1] & 0x7F == 0 for p in heard)
    assert b_heard == 0


def test_recording(rtpengine: Rtpengine) -> None:
    recorded, started = new_call_id(), new_call_id()
    note = f"veil-metadata-{uuid.uuid4().hex}"

    async def go() -> None:
        async with ng_client(rtpengine) as ng:
            await ng.offer(recorded, "A", g711_sdp(PARTY_A, 30000, 1), record=True, metadata=note)
            await ng.answer(recorded, "A", "B", g711_sdp(PARTY_B, 30100, 2))
            await ng.offer(started, "A", g711_sdp(PARTY_A, 30000, 1))
            await ng.answer(started, "A", "B", g711_sdp(PARTY_B, 30100, 2))
            assert not list((rtpengine.spool / "pcaps").glob(f"{started}-*.pcap"))
            await ng.start_recording(started)
            await ng.stop_recording(started)
            await ng.delete(recorded)
            await ng.delete(started)

    asyncio.run(go())
    for call_id in (recorded, started):
        assert len(list((rtpengine.spool / "pcaps").glob(f"{call_id}-*.pcap"))) == 1
    # The metadata file moves to metadata/ when the recording ends, with our string in it.
    metadata = list((rtpengine.spool / "metadata").glob(f"*{recorded}*"))
    assert len(metadata) == 1
    assert note in metadata[0].read_text(errors="replace")


def test_repeated_cookie_gets_the_cached_reply(rtpengine: Rtpengine) -> None:
    """rtpengine answers a cookie it has seen with its first reply, whatever is asked now.

    That is what makes resending the same datagram safe (the offer is not run twice), and
    why cookies must never repeat."""
    cookie = f"replay-{uuid.uuid4().hex}".encode()
    call_id = new_call_id()

    def ask(message: dict[str, Any], cookie: bytes = cookie) -> dict[str | bytes, Any]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(cookie + b" " + bencode.encode(message), (HOST, rtpengine.ng_port))
            data = sock.recv(65535)
        assert data.startswith(cookie + b" ")
        reply = bencode.decode(data[len(cookie) + 1 :], text=True)
        assert isinstance(reply, dict)
        return reply

    offer = {
        "command": "offer",
        "call-id": call_id,
        "from-tag": "A",
        "sdp": g711_sdp(PARTY_A, 30000, 1),
    }
    duplicates = rtpengine.log().count("as a duplicate")
    first = ask(offer)
    assert first["result"] == "ok"
    assert ask(offer) == first  # a resend
    assert ask({"command": "ping"}) == first  # a different request: still the old reply
    assert ask({"command": "ping"}, cookie + b"-new") == {"result": "pong"}
    assert ask({"command": "delete", "call-id": call_id}, cookie + b"-d")["result"] == "ok"
    # rtpengine ran the offer once and logged the two repeats as duplicates.
    log = rtpengine.log()
    assert log.count(f"[{call_id}]: [control] Received command 'offer'") == 1
    assert log.count("as a duplicate") == duplicates + 2


def test_200_parallel_offers(rtpengine: Rtpengine) -> None:
    calls = [new_call_id() for _ in range(200)]

    async def go() -> list[bytes]:
        async with ng_client(rtpengine) as ng:
            sdps = await asyncio.gather(
                *(ng.offer(c, "A", g711_sdp(PARTY_A, 30000, n)) for n, c in enumerate(calls))
            )
            await asyncio.gather(*(ng.delete(c) for c in calls))
            return sdps

    sdps = asyncio.run(go())
    # Each reply is its own call's: the o= session id is the request's own number ...
    for number, sdp in enumerate(sdps):
        assert re.search(rb"^o=- %d 1 IN IP4 127\.0\.0\.1\r$" % number, sdp, re.M), sdp
    # ... and every call got a port of its own (a repeated cookie would replay a reply).
    ports = {media_port(sdp) for sdp in sdps}
    assert len(ports) == 200
    assert all(rtpengine.port_min <= port <= rtpengine.port_max for port in ports)


def _telephone_event(seq: int, ts: int, ssrc: int, event: int, duration: int, end: bool) -> bytes:
    """RFC 3550 header (PT 101, marker on the first packet) + RFC 4733 event payload."""
    header = struct.pack("!BBHII", 0x80, (0x80 if duration == 160 else 0) | 101, seq, ts, ssrc)
    return header + struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)


class Phone:
    """A party's RTP socket; its port is the one its SDP advertises."""

    def __init__(self) -> None:
        self.sock = udp_socket()
        self.port = self.sock.getsockname()[1]
        self.seq, self.ts, self.ssrc = 1000, 16000, uuid.uuid4().int & 0xFFFFFFFF

    async def press(self, event: int, to_port: int) -> None:
        """One key press: three updates, then the end packet three times (RFC 4733 2.5.1.4)."""
        for duration, end in [(160, False), (320, False), (480, False)] + [(640, True)] * 3:
            packet = _telephone_event(self.seq, self.ts, self.ssrc, event, duration, end)
            self.sock.sendto(packet, (HOST, to_port))
            self.seq += 1
            await asyncio.sleep(0.01)
        self.ts += 1600


def test_dtmf_through_rtpengine(rtpengine: Rtpengine) -> None:
    call_id, other_call = new_call_id(), new_call_id()
    a, b = Phone(), Phone()

    async def go() -> None:
        events: asyncio.Queue[DtmfEvent] = asyncio.Queue()
        others: list[DtmfEvent] = []
        async with (
            ng_client(rtpengine) as ng,
            await DtmfListener.start(HOST, rtpengine.dtmf_port) as listener,
        ):
            listener.subscribe(call_id, events.put_nowait)
            listener.subscribe(other_call, others.append)
            to_b = await ng.offer(call_id, "A", g711_sdp(HOST, a.port, 1))
            to_a = await ng.answer(call_id, "A", "B", g711_sdp(HOST, b.port, 2))
            # A sends to the port in the SDP A got (the answer), B to the one in the offer.
            a_to, b_to = media_port(to_a), media_port(to_b)

            async def press(phone: Phone, to: int, event: int) -> tuple[DtmfEvent, list[bytes]]:
                await phone.press(event, to)
                got = await asyncio.wait_for(events.get(), 2)
                return got, await recv_all((b if phone is a else a).sock, 0.15)

            got, relayed = await press(a, a_to, 4)
            assert got == DtmfEvent(call_id, "A", "4", 80, 10)
            assert len(relayed) == 6
            assert all(p[1] & 0x7F == 101 and p[12] == 4 for p in relayed)

            got, relayed = await press(b, b_to, 10)
            assert (got.call_id, got.source_tag, got.digit) == (call_id, "B", "*")
            assert len(relayed) == 6

            # Blocked: B hears nothing, but the digit is still reported (PIN entry).
            await ng.block_dtmf(call_id, "A")
            got, relayed = await press(a, a_to, 11)
            assert (got.source_tag, got.digit) == ("A", "#")
            assert relayed == []

            await ng.unblock_dtmf(call_id, "A")
            got, relayed = await press(a, a_to, 15)
            assert (got.source_tag, got.digit) == ("A", "D")
            assert len(relayed) == 6

            await ng.delete(call_id)
        assert events.empty()
        assert others == []

    try:
        asyncio.run(go())
    finally:
        a.sock.close()
        b.sock.close()


# --- client behaviour with fake NG servers ------------------------------------------------


class FakeNg(asyncio.DatagramProtocol):
    """An NG server whose answers a test decides: ``respond(cookie, message, copy)``
    returns the reply dict, or None to stay silent."""

    def __init__(self, respond: Callable[[bytes, dict[str, Any], int], dict[str, Any] | None]):
        self.respond = respond
        self.received: list[bytes] = []
        self.senders: dict[bytes, tuple[str | Any, int]] = {}  # cookie -> client address
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.append(data)
        cookie, _, body = data.partition(b" ")
        self.senders[cookie] = addr
        message = bencode.decode(body, text=True)
        assert isinstance(message, dict)
        reply = self.respond(cookie, cast(dict[str, Any], message), self.received.count(data))
        if reply is not None and self.transport is not None:
            self.transport.sendto(cookie + b" " + bencode.encode(reply), addr)

    def reply(self, cookie: bytes, reply: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.sendto(cookie + b" " + bencode.encode(reply), self.senders[cookie])

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@asynccontextmanager
async def fake_ng(
    respond: Callable[[bytes, dict[str, Any], int], dict[str, Any] | None], **client: Any
) -> AsyncIterator[tuple[FakeNg, NgClient]]:
    """A fake NG server and a client connected to it."""
    server = FakeNg(respond)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=(HOST, 0))
    try:
        async with await NgClient.connect(HOST, server.port, **client) as ng:
            yield server, ng
    finally:
        transport.close()


def test_timeout_when_nothing_listens() -> None:
    port = free_udp_port()

    async def go() -> float:
        async with await NgClient.connect(HOST, port, timeout=0.1, retries=2) as ng:
            started = time.monotonic()
            with pytest.raises(NgTimeout, match="3 tries"):
                await ng.ping()
            return time.monotonic() - started

    elapsed = asyncio.run(go())
    assert 0.3 <= elapsed < 1.0


def test_a_lost_request_is_resent_with_the_same_cookie() -> None:
    async def go() -> tuple[dict[str, Any], list[bytes], list[bytes]]:
        def respond(cookie: bytes, message: dict[str, Any], copy: int) -> dict[str, Any] | None:
            # Queries: only the second copy is answered, as if the first was lost.
            # Anything else: never answered.
            return {"result": "ok"} if message["command"] == "query" and copy == 2 else None

        async with fake_ng(respond, timeout=0.1, retries=2) as (server, ng):
            reply = await ng.command("query", {"call-id": "x", "delete delay": 0})
            seen = list(server.received)
            server.received.clear()
            with pytest.raises(NgTimeout):
                await ng.command("ping", some_key="yes")  # a fresh cookie
            return reply, seen, list(server.received)

    reply, seen, second = asyncio.run(go())
    assert reply == {"result": "ok"}
    assert len(seen) == 2 and seen[0] == seen[1]
    cookie, _, body = seen[0].partition(b" ")
    assert bencode.decode(body, text=True) == {
        "command": "query",
        "call-id": "x",
        "delete delay": 0,
    }
    # The next command: a new cookie (same per-client prefix), sent 1 + 2 times.
    assert len(second) == 3 and len(set(second)) == 1
    new_cookie = second[0].partition(b" ")[0]
    assert new_cookie != cookie
    assert new_cookie.rpartition(b"_")[0] == cookie.rpartition(b"_")[0]
    # Keyword names use '_' for '-'.
    assert bencode.decode(second[0].partition(b" ")[2], text=True) == {
        "command": "ping",
        "some-key": "yes",
    }


def test_replies_are_matched_by_cookie() -> None:
    async def go() -> tuple[list[dict[str, Any]], list[bytes]]:
        held: list[tuple[bytes, dict[str, Any]]] = []
        all_held = asyncio.Event()

        def respond(cookie: bytes, message: dict[str, Any], copy: int) -> None:
            held.append((cookie, message))
            if len(held) == 6:
                all_held.set()

        async with fake_ng(respond, timeout=1, retries=0) as (server, ng):
            other = await NgClient.connect(HOST, server.port, timeout=1, retries=0)
            tasks = [asyncio.ensure_future(ng.command("query", call_id=str(n))) for n in range(5)]
            tasks.append(asyncio.ensure_future(other.command("query", call_id="other")))
            await asyncio.wait_for(all_held.wait(), 2)
            assert server.transport is not None
            first_cookie = held[0][0]
            ng_address = server.senders[first_cookie]
            # Garbage, strangers and broken bodies first; then the replies in reverse order.
            for junk in [b"", b"nocookie", b"unknown d6:result2:oke", b"x" * 100]:
                server.transport.sendto(junk, ng_address)
            server.transport.sendto(first_cookie + b" not-bencode", ng_address)
            server.transport.sendto(first_cookie + b" li1ee", ng_address)
            for cookie, message in reversed(held):
                server.reply(cookie, {"result": "ok", "echo": message["call-id"]})
            replies = await asyncio.gather(*tasks)
            other.close()
            return replies, [cookie for cookie, _ in held]

    replies, cookies = asyncio.run(go())
    assert [r["echo"] for r in replies] == ["0", "1", "2", "3", "4", "other"]
    assert len(set(cookies)) == 6
    # Two clients: different random prefixes, so their cookies can never meet.
    assert len({cookie.rpartition(b"_")[0] for cookie in cookies}) == 2


def test_max_in_flight_limits_outstanding_commands() -> None:
    async def go() -> list[int]:
        outstanding = []
        async with fake_ng(lambda c, m, copy: None, retries=0, max_in_flight=2) as (server, ng):
            tasks = [asyncio.ensure_future(ng.command("query", call_id=str(n))) for n in range(5)]
            answered = 0
            while answered < 5:
                await asyncio.sleep(0.05)
                outstanding.append(len(server.received) - answered)
                for data in server.received[answered:]:
                    server.reply(data.partition(b" ")[0], {"result": "ok"})
                answered = len(server.received)
            await asyncio.gather(*tasks)
        return outstanding

    # Two at a time reach the server; the rest wait (the 1 s timeout never strikes).
    assert asyncio.run(go()) == [2, 2, 1]


def test_odd_results_and_warnings(caplog: pytest.LogCaptureFixture) -> None:
    def respond(cookie: bytes, message: dict[str, Any], copy: int) -> dict[str, Any]:
        return {
            "ping": {"result": "ok"},  # not "pong"
            "offer": {"result": "load limit", "message": "overloaded"},
            "answer": {"result": "ok", "warning": "odd", "sdp": "v=0\r\n"},
            "delete": {"result": "error"},
        }[message["command"]]

    async def go() -> int:
        async with fake_ng(respond, timeout=1) as (server, ng):
            with pytest.raises(NgError, match="unexpected result 'ok'"):
                await ng.ping()
            with pytest.raises(NgError, match="overloaded"):
                await ng.offer("c", "A", b"v=0\r\n")
            assert await ng.answer("c", "A", "B", b"v=0\r\n") == b"v=0\r\n"
            with pytest.raises(NgError, match="result 'error'"):
                await ng.delete("c")
            return server.port

    with caplog.at_level(logging.WARNING, logger="veil.media.ng"):
        port = asyncio.run(go())
    assert [r.getMessage() for r in caplog.records] == [f"rtpengine 127.0.0.1:{port} 'answer': odd"]


def test_close_fails_pending_and_later_commands() -> None:
    async def go() -> None:
        async with fake_ng(lambda c, m, copy: None, timeout=5, retries=0) as (_, ng):
            pending = asyncio.ensure_future(ng.ping())
            await asyncio.sleep(0.05)
            ng.close()
            with pytest.raises(NgException, match="closed"):
                await pending
            with pytest.raises(NgException, match="closed"):
                await ng.ping()

    asyncio.run(go())


# --- NgPool -------------------------------------------------------------------------------


def test_parse_engines() -> None:
    assert parse_engines("udp:127.0.0.1:2223, udp:[::1]:2224,localhost:9") == [
        ("127.0.0.1", 2223),
        ("::1", 2224),
        ("localhost", 9),
    ]
    for bad in ["", "127.0.0.1", "udp:127.0.0.1:x", "tcp:127.0.0.1:2223", "h:0", "h:70000"]:
        with pytest.raises(ValueError):
            parse_engines(bad)


def test_pool_hashing_is_stable_and_spreads_calls() -> None:
    async def go() -> None:
        spec = "udp:127.0.0.1:1,udp:127.0.0.1:2,udp:127.0.0.1:3"
        async with await NgPool.connect(spec) as one, await NgPool.connect(spec) as two:
            firsts = set()
            for n in range(100):
                ports_one = [c.port for c in one.candidates(f"call-{n}")]
                assert ports_one == [c.port for c in two.candidates(f"call-{n}")]
                assert sorted(ports_one) == [1, 2, 3]
                firsts.add(ports_one[0])
            assert firsts == {1, 2, 3}

    asyncio.run(go())


def test_pool_fails_over_a_new_call_and_keeps_it_there(rtpengine: Rtpengine) -> None:
    dead = free_udp_port()

    async def go() -> None:
        pool = await NgPool.connect(
            [(HOST, dead), (HOST, rtpengine.ng_port)], timeout=0.1, retries=1
        )
        async with pool:
            dead_client, live = pool.clients
            call_id = next(
                c for c in iter(new_call_id, None) if pool.candidates(c)[0] is dead_client
            )
            assert pool.engine_for(call_id) is dead_client
            started = time.monotonic()
            to_b = await pool.offer(call_id, "A", g711_sdp(PARTY_A, 30000, 1))
            assert time.monotonic() - started >= 0.2  # the dead engine had its two tries
            assert rtpengine.port_min <= media_port(to_b) <= rtpengine.port_max
            assert pool.engine_for(call_id) is live
            # The rest of the call goes to the engine that has it (the dead one would time out).
            await pool.answer(call_id, "A", "B", g711_sdp(PARTY_B, 30100, 2))
            assert set((await pool.query(call_id))["tags"]) == {"A", "B"}
            await pool.ping()  # not about a call: the first engine that answers
            await pool.delete(call_id)
            assert pool.engine_for(call_id) is dead_client
            with pytest.raises(NgTimeout):
                await pool.query(call_id)

    asyncio.run(go())


def test_pool_does_not_fail_over_error_replies(rtpengine: Rtpengine) -> None:
    refused = {"result": "error", "error-reason": "no thanks"}

    async def go() -> None:
        async with fake_ng(lambda c, m, copy: refused) as (server, _):
            pool = await NgPool.connect(
                [(HOST, server.port), (HOST, rtpengine.ng_port)], timeout=0.5
            )
            async with pool:
                call_id = next(
                    c for c in iter(new_call_id, None) if pool.candidates(c)[0].port == server.port
                )
                with pytest.raises(NgError, match="no thanks"):
                    await pool.offer(call_id, "A", g711_sdp(PARTY_A, 30000, 1))
                assert len(server.received) == 1
                with pytest.raises(NgError, match="Unknown call-id"):
                    await pool.clients[1].query(call_id)  # never reached the other engine

    asyncio.run(go())


def test_pool_with_no_engine_answering() -> None:
    async def go() -> None:
        engines = [(HOST, free_udp_port()), (HOST, free_udp_port())]
        async with await NgPool.connect(engines, timeout=0.05, retries=0) as pool:
            with pytest.raises(NgTimeout):
                await pool.offer(new_call_id(), "A", g711_sdp(PARTY_A, 30000, 1))
            with pytest.raises(NgTimeout):
                await pool.ping()

    asyncio.run(go())


# --- DtmfListener without rtpengine -------------------------------------------------------


def _event(**changes: Any) -> bytes:
    doc = {
        "callid": "c1",
        "source_tag": "A",
        "tags": ["A", "B"],
        "type": "DTMF",
        "timestamp": 1795631354,
        "source_ip": "127.0.0.1",
        "event": 1,
        "duration": 120,
        "volume": 10,
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("event", "digit"),
    [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (13, "B"), (14, "C"), (15, "D")],
)
def test_event_digits(event: int, digit: str) -> None:
    assert parse_event(_event(event=event)) == DtmfEvent("c1", "A", digit, 120, 10)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"[" * 100_000,
        _event(event=16),
        _event(event=-1),
        _event(event=True),
        _event(event="1"),
        _event(event=None),
        _event(callid=None),
        _event(callid=""),
        _event(callid=7),
        _event(source_tag=None),
        _event(duration="long"),
        _event(volume=1.5),
        _event(type="RTCP"),
    ],
)
def test_malformed_events_are_ignored(data: bytes) -> None:
    assert parse_event(data) is None


def test_listener_dispatches_by_call_id() -> None:
    async def go() -> None:
        async with await DtmfListener.start(HOST, 0) as listener:
            c1: list[str] = []
            c1_again: list[str] = []
            c2: list[str] = []

            def broken(event: DtmfEvent) -> None:
                raise RuntimeError("a bad subscriber must not stop the others")

            listener.subscribe("c1", broken)
            off = listener.subscribe("c1", lambda e: c1.append(e.digit))
            listener.subscribe("c1", lambda e: c1_again.append(e.digit))
            listener.subscribe("c2", lambda e: c2.append(e.digit))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for data in [_event(event=1), b"junk", _event(callid="c2", event=11)]:
                    sender.sendto(data, listener.address)
                await asyncio.sleep(0.1)
                off()
                off()  # twice is harmless
                sender.sendto(_event(event=12), listener.address)
                sender.sendto(_event(callid="nobody", event=3), listener.address)
                await asyncio.sleep(0.1)
            assert (c1, c1_again, c2) == (["1"], ["1", "A"], ["#"])

    asyncio.run(go())
