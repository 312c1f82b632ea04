"""veil.media.prompts against a real HTTP server on 127.0.0.1 and the real sox.

The source audio is made here with sox and lame: 1.5 s of 44.1 kHz stereo, 440 Hz on the
left and 1000 Hz on the right, so a correct downmix keeps both tones.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import io
import math
import os
import subprocess
import sys
import threading
import time
import wave
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.servers import free_port
from veil.media.prompts import (
    DEFAULTS,
    INCORRECT_PIN,
    PIN_PROMPT,
    UNKNOWN_CALLER,
    PromptError,
    Prompts,
    audio_kind,
)

HOST = "127.0.0.1"
SECONDS = 1.5
LEFT, RIGHT = 440.0, 1000.0
ABSENT = (300.0, 700.0, 2000.0)  # frequencies that must stay quiet
LIMIT = 64 * 1024  # max_bytes of the error tests
TIMEOUT = 0.5

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# --- a real HTTP server ---------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    length: bool = True  # send Content-Length; without it the body ends when the socket closes
    location: str | None = None  # a redirect
    # "normal", "hang" (no response), "trickle" (a byte every 50 ms), "short" (20 bytes of
    # the body, then the socket closes) or "gate" (the response waits for gate.set())
    mode: str = "normal"
    gate: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)  # set on a request


class Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread

    def __init__(self) -> None:
        super().__init__((HOST, 0), Handler)
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits[self.path] += 1
        route = self.server.routes.get(urlsplit(self.path).path, Route(status=404))
        route.arrived.set()
        # The client may hang up first, as it should on a timeout or an oversized body.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(route)

    def _answer(self, route: Route) -> None:
        stop = self.server.stop
        if route.mode == "hang":
            stop.wait(10)
            return
        if route.mode == "gate":
            route.gate.wait(10)
        self.send_response(route.status)
        if route.location is not None:
            self.send_header("Location", route.location)
        self.send_header("Content-Type", route.content_type)
        if route.length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if route.mode == "short":  # promises more than it sends, then hangs up
            self.wfile.write(route.body[:20])
            return
        if route.mode == "trickle":  # never idle long enough for a per-read timeout
            for byte in route.body:
                if stop.wait(0.05):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        self.wfile.write(route.body)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.stop.set()
    for route in srv.routes.values():
        route.gate.set()
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; requests to 127.0.0.1 must not go through one."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)


# --- source audio and checks ----------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    wav: bytes
    mp3: bytes  # with an ID3v2 tag in front
    bare_mp3: bytes  # starting with an MPEG frame


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    tmp = tmp_path_factory.mktemp("sources")
    wav, mp3, bare = tmp / "tone.wav", tmp / "tone.mp3", tmp / "bare.mp3"
    commands = [
        [
            *("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(wav)),
            *("synth", str(SECONDS), "sine", str(LEFT), "sine", str(RIGHT), "gain", "-6"),
        ],
        ["lame", "--quiet", "--add-id3v2", "--tt", "Tone", str(wav), str(mp3)],
        ["lame", "--quiet", str(wav), str(bare)],
    ]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    return Sources(wav.read_bytes(), mp3.read_bytes(), bare.read_bytes())


def read_wav(path: Path) -> tuple[tuple[int, int, int], array.array[int]]:
    """((channels, sample width, rate), samples)."""
    with wave.open(str(path), "rb") as audio:
        params = (audio.getnchannels(), audio.getsampwidth(), audio.getframerate())
        samples = array.array("h", audio.readframes(audio.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return params, samples


def power(samples: array.array[int], freq: float, rate: int = 8000) -> float:
    """Goertzel: the signal's power at ``freq``."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def assert_tones(path: Path) -> None:
    params, samples = read_wav(path)
    assert params == (1, 2, 8000)
    assert abs(len(samples) / 8000 - SECONDS) <= 0.1
    quiet = max(power(samples, f) for f in ABSENT)
    assert power(samples, LEFT) > 100 * quiet
    assert power(samples, RIGHT) > 100 * quiet


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


def backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


# --- conversion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "content_type"),
    [
        ("/tone.wav", "wav", "audio/wav"),
        ("/tone.mp3", "mp3", "audio/mpeg"),
        ("/bare.mp3", "bare_mp3", "audio/mpeg"),
        # Magic bytes decide, not the suffix or the Content-Type.
        ("/prompt.txt", "wav", "text/html"),
        ("/prompt", "mp3", "text/plain"),
    ],
)
def test_fetch_converts_to_8k_mono_16_bit(
    server: Server, sources: Sources, tmp_path: Path, path: str, kind: str, content_type: str
) -> None:
    server.routes[path] = Route(getattr(sources, kind), content_type=content_type)

    async def go() -> Path:
        prompts = Prompts(tmp_path)
        try:
            return await prompts.fetch(server.url(path))
        finally:
            await prompts.aclose()

    result = run(go())
    assert result.parent == tmp_path
    assert_tones(result)
    assert cache_files(tmp_path) == [result.name]


def test_a_redirect_chain_of_three_is_followed(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)
    for n, target in ((1, "/tone.wav"), (2, "/r1"), (3, "/r2")):
        server.routes[f"/r{n}"] = Route(status=302, location=server.url(target))

    async def go() -> Path:
        prompts = Prompts(tmp_path)
        try:
            return await prompts.fetch(server.url("/r3"))
        finally:
            await prompts.aclose()

    assert_tones(run(go()))
    assert server.hits == {"/r3": 1, "/r2": 1, "/r1": 1, "/tone.wav": 1}


# --- the cache ------------------------------------------------------------------------------


def test_a_fresh_entry_is_reused_without_a_request(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)

    async def go() -> tuple[Path, Path]:
        prompts = Prompts(tmp_path)
        try:
            return await prompts.fetch(server.url("/tone.wav")), await prompts.fetch(
                server.url("/tone.wav")
            )
        finally:
            await prompts.aclose()

    first, second = run(go())
    assert first == second
    assert server.hits["/tone.wav"] == 1


def test_the_cache_survives_a_new_prompts(server: Server, sources: Sources, tmp_path: Path) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)

    async def once() -> Path:
        prompts = Prompts(tmp_path)
        try:
            return await prompts.fetch(server.url("/tone.wav"))
        finally:
            await prompts.aclose()

    assert run(once()) == run(once())
    assert server.hits["/tone.wav"] == 1


def test_an_expired_entry_is_fetched_again(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)
    url = server.url("/tone.wav")

    async def go() -> None:
        prompts = Prompts(tmp_path, ttl=60)
        try:
            path = await prompts.fetch(url)
            backdate(path, 61)
            assert await prompts.fetch(url) == path
            assert time.time() - path.stat().st_mtime < 60
        finally:
            await prompts.aclose()

    run(go())
    assert server.hits["/tone.wav"] == 2


def test_a_failed_refresh_serves_the_stale_copy_and_waits_another_ttl(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)
    url = server.url("/tone.wav")

    async def go() -> None:
        prompts = Prompts(tmp_path, ttl=60)
        try:
            path = await prompts.fetch(url)
            before = path.read_bytes()
            backdate(path, 61)
            server.routes["/tone.wav"] = Route(status=503)
            assert await prompts.fetch(url) == path
            assert path.read_bytes() == before
            assert await prompts.fetch(url) == path  # renewed: no third request
        finally:
            await prompts.aclose()

    run(go())
    assert server.hits["/tone.wav"] == 2
    assert len(cache_files(tmp_path)) == 1


def test_concurrent_fetches_of_one_url_make_one_request(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.mp3"] = Route(sources.mp3)

    async def go() -> list[Path]:
        prompts = Prompts(tmp_path)
        try:
            return await asyncio.gather(*(prompts.fetch(server.url("/tone.mp3")) for _ in range(8)))
        finally:
            await prompts.aclose()

    paths = run(go())
    assert len(set(paths)) == 1
    assert server.hits["/tone.mp3"] == 1
    assert_tones(paths[0])


async def arrival(route: Route) -> None:
    assert await asyncio.to_thread(route.arrived.wait, 10)


def test_a_cancelled_caller_does_not_cancel_the_shared_download(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    route = server.routes["/tone.wav"] = Route(sources.wav, mode="gate")

    async def go() -> None:
        prompts = Prompts(tmp_path)
        try:
            quitter = asyncio.create_task(prompts.fetch(server.url("/tone.wav")))
            stayer = asyncio.create_task(prompts.fetch(server.url("/tone.wav")))
            await arrival(route)
            quitter.cancel()
            route.gate.set()
            assert_tones(await stayer)
            assert quitter.cancelled()
        finally:
            await prompts.aclose()

    run(go())
    assert server.hits["/tone.wav"] == 1


def test_aclose_cancels_a_download_and_leaves_nothing(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    route = server.routes["/tone.wav"] = Route(sources.wav, mode="gate")

    async def go() -> None:
        prompts = Prompts(tmp_path)
        task = asyncio.create_task(prompts.fetch(server.url("/tone.wav")))
        await arrival(route)
        await prompts.aclose()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go())
    assert cache_files(tmp_path) == []


def test_the_cache_keeps_the_newest_entries(
    server: Server, sources: Sources, tmp_path: Path
) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)

    async def go() -> list[Path]:
        prompts = Prompts(tmp_path, max_entries=2)
        paths = []
        try:
            for n in range(3):
                path = await prompts.fetch(server.url(f"/tone.wav?n={n}"))
                backdate(path, 30 - 10 * n)  # a strict order, whatever the clock's resolution
                paths.append(path)
        finally:
            await prompts.aclose()
        return paths

    paths = run(go())
    assert len(set(paths)) == 3
    assert cache_files(tmp_path) == sorted(p.name for p in paths[1:])


def test_leftovers_of_a_crash_are_removed(server: Server, sources: Sources, tmp_path: Path) -> None:
    server.routes["/tone.wav"] = Route(sources.wav)
    old, current = tmp_path / ".tmp-crashed", tmp_path / ".tmp-in-use"
    for scratch in (old, current):
        scratch.mkdir()
        (scratch / "source").write_bytes(b"RIFF")
    backdate(old, 2 * 3600)

    async def go() -> Path:
        prompts = Prompts(tmp_path)
        try:
            return await prompts.fetch(server.url("/tone.wav"))
        finally:
            await prompts.aclose()

    path = run(go())
    assert cache_files(tmp_path) == sorted([current.name, path.name])


# --- errors ---------------------------------------------------------------------------------


def broken_wav() -> bytes:
    return b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64)


def empty_wav() -> bytes:
    """A valid 44.1 kHz stereo WAV holding no frames."""
    data = io.BytesIO()
    with wave.open(data, "wb") as audio:
        audio.setnchannels(2)
        audio.setsampwidth(2)
        audio.setframerate(44100)
    return data.getvalue()


@pytest.mark.parametrize(
    ("path", "route", "reason"),
    [
        ("/missing", None, "HTTP 404"),
        ("/error", Route(b"oops", status=500), "HTTP 500"),
        ("/page.html", Route(b"<html><body>Hi</body></html>", content_type="text/html"), None),
        (
            "/page.mp3",
            Route(b"<!doctype html>" + bytes(LIMIT // 2), content_type="audio/mpeg", length=False),
            None,
        ),
        ("/empty.wav", Route(b""), None),
        ("/big.wav", Route(b"RIFF\0\0\0\0WAVE" + bytes(LIMIT)), "larger than 64 KiB"),
        ("/big.mp3", Route(b"ID3" + bytes(LIMIT), length=False), "larger than 64 KiB"),
        ("/hang", Route(mode="hang"), "timed out after 0.5 s"),
        ("/trickle", Route(b"RIFF\0\0\0\0WAVE" + bytes(100), mode="trickle"), None),
        ("/broken.wav", Route(broken_wav()), "conversion failed: "),
        ("/junk.mp3", Route(b"ID3" + bytes(5000)), "conversion failed: "),
        ("/silent.wav", Route(empty_wav()), "no audio in the file"),
        ("/short.wav", Route(b"RIFF\0\0\0\0WAVE" + bytes(1000), mode="short"), "request failed: "),
        ("/r4", None, "more than 3 redirects"),
        ("/to-ftp", Route(status=301, location="ftp://127.0.0.1/a.wav"), None),
    ],
)
def test_errors_give_a_reason_and_leave_no_files(
    server: Server, tmp_path: Path, path: str, route: Route | None, reason: str | None
) -> None:
    if route is not None:
        server.routes[path] = route
    for n in range(4):
        server.routes[f"/r{n + 1}"] = Route(status=307, location=server.url(f"/r{n}"))
    expected = (
        reason
        or {
            "/page.html": "not an mp3 or wav file",
            "/page.mp3": "not an mp3 or wav file",
            "/empty.wav": "not an mp3 or wav file",
            "/trickle": "timed out after 0.5 s",
            "/to-ftp": "only http and https URLs",
        }[path]
    )

    async def go() -> None:
        prompts = Prompts(tmp_path, max_bytes=LIMIT, timeout=TIMEOUT)
        try:
            await prompts.fetch(server.url(path))
        finally:
            await prompts.aclose()

    with pytest.raises(PromptError) as raised:
        run(go())
    if expected.endswith(": "):
        assert str(raised.value).startswith(expected)
        assert len(str(raised.value)) > len(expected)
        assert str(tmp_path) not in str(raised.value)
    else:
        assert str(raised.value) == expected
    assert server.hits[path] == 1
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.wav", "file:///etc/passwd", "a.wav", ""])
def test_only_http_and_https(tmp_path: Path, url: str) -> None:
    async def go() -> None:
        prompts = Prompts(tmp_path)
        try:
            await prompts.fetch(url)
        finally:
            await prompts.aclose()

    with pytest.raises(PromptError, match=r"^only http and https URLs$"):
        run(go())
    assert cache_files(tmp_path) == []


def test_a_closed_port_cannot_connect(tmp_path: Path) -> None:
    async def go() -> None:
        prompts = Prompts(tmp_path, timeout=TIMEOUT)
        try:
            await prompts.fetch(f"http://{HOST}:{free_port()}/a.wav")
        finally:
            await prompts.aclose()

    with pytest.raises(PromptError, match=r"^could not connect$"):
        run(go())
    assert cache_files(tmp_path) == []


def test_the_size_limit_is_shown_in_the_unit_it_was_given(server: Server, tmp_path: Path) -> None:
    server.routes["/big.wav"] = Route(b"RIFF\0\0\0\0WAVE" + bytes(6 * 2**20))
    reasons = []
    for limit in (5 * 2**20, 1000):

        async def go(limit: int = limit) -> None:
            prompts = Prompts(tmp_path, max_bytes=limit)
            try:
                await prompts.fetch(server.url("/big.wav"))
            finally:
                await prompts.aclose()

        with pytest.raises(PromptError) as raised:
            run(go())
        reasons.append(str(raised.value))
    assert reasons == ["larger than 5 MiB", "larger than 1000 bytes"]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x44\x00\x00", "mp3"),  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
        (b"\xff\xf3\x48\xc4\x00\x00", "mp3"),  # MPEG-2 layer III, 24 kHz
        (b"\xff\xf1\x50\x80\x00\x00", None),  # ADTS AAC: layer 0
        (b"\xff\xeb\x90\x44\x00\x00", None),  # reserved MPEG version
        (b"\xff\xfb\xf0\x44\x00\x00", None),  # bitrate index 15
        (b"\xff\xfb\x9c\x44\x00\x00", None),  # sample rate index 3
        (b"RIFF\x24\x08\x00\x00AVI LIST", None),
        (b"OggS\x00\x02", None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_audio_kind(head: bytes, kind: str | None) -> None:
    assert audio_kind(head) == kind


# --- default prompts ------------------------------------------------------------------------


def test_default_prompts_are_short_8k_mono_16_bit_wavs(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path)
    try:
        assert {PIN_PROMPT, INCORRECT_PIN, UNKNOWN_CALLER} == DEFAULTS
        for name in DEFAULTS:
            path = prompts.default(name)
            assert path.name == f"{name}.wav"
            params, samples = read_wav(path)
            assert params == (1, 2, 8000)
            assert 1.0 < len(samples) / 8000 < 4.0
            assert max(map(abs, samples)) > 8000  # speech, not silence
        with pytest.raises(ValueError, match="no default prompt"):
            prompts.default("../../etc/passwd")
    finally:
        run(prompts.aclose())
