"""Audio prompts for rtpengine's ``play media``: customer URLs to 8 kHz mono 16-bit WAV files.

Plivo's masking sessions name prompts by URL (``first_party_play_url``, ``pin_prompt_play``,
…: "an mp3 or wav over http or https"). ``Prompts.fetch`` downloads one (streamed, capped in
size and in total time, at most 3 redirects), checks the content by its magic bytes rather
than by suffix or Content-Type, converts it with sox and caches the result in ``cache_dir``
under the sha256 of the URL. ``Prompts.default`` returns the prompts shipped in
``default_prompts/`` (made by ``default_prompts/make.sh``) for sessions that give no URL.

Every failure is a ``PromptError`` whose text is a short reason for an event or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import time
import wave
from pathlib import Path

import httpx

__all__ = [
    "DEFAULTS",
    "INCORRECT_PIN",
    "PIN_PROMPT",
    "UNKNOWN_CALLER",
    "PromptError",
    "Prompts",
    "audio_kind",
    "convert",
]

log = logging.getLogger("veil.media")

PIN_PROMPT = "pin_prompt"  # "Please enter your PIN, followed by the hash key."
INCORRECT_PIN = "incorrect_pin"  # "The PIN you entered is incorrect."
UNKNOWN_CALLER = "unknown_caller"  # "Sorry, this number cannot connect your call."
DEFAULTS = frozenset({PIN_PROMPT, INCORRECT_PIN, UNKNOWN_CALLER})
DEFAULT_DIR = Path(__file__).parent / "default_prompts"

MAX_REDIRECTS = 3
MAX_ENTRIES = 500  # cached prompts kept; the least recently fetched go first
MAX_SECONDS = 300  # longer audio is cut: 500 entries of 5 min at 16 kB/s stay under 2.5 GB
CONVERT_TIMEOUT = 30.0  # seconds for sox; a 5 MiB mp3 takes well under one
STALE_TMP = 3600.0  # seconds after which a scratch dir is a crash's leftover, not in use
_SOX_FAIL = re.compile(r"^.*?FAIL \w+: (can't open input file `[^']*': )?")
_TMP_PREFIX = ".tmp-"  # dot-named, so a scratch dir never matches the "*.wav" entries


class PromptError(Exception):
    """A prompt URL that cannot be used; ``str()`` is the short reason ("HTTP 404")."""


def _size(n: int) -> str:
    if n % 2**20 == 0:
        return f"{n // 2**20} MiB"
    if n % 2**10 == 0:
        return f"{n // 2**10} KiB"
    return f"{n} bytes"


def audio_kind(head: bytes) -> str | None:
    """``"wav"``, ``"mp3"`` or ``None`` from a file's first 12 bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3":  # an ID3v2 tag in front of the frames
        return "mp3"
    # An MPEG audio frame header: 11 sync bits, then version, layer, bitrate and sample
    # rate fields that must not hold their reserved values.
    if len(head) >= 3 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
        bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
        if version != 1 and layer != 0 and bitrate != 15 and rate != 3:
            return "mp3"
    return None


class Prompts:
    """Fetches, converts and caches prompt URLs; one per process, closed with ``aclose``."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_bytes: int = 5 * 2**20,
        timeout: float = 10.0,
        ttl: float = 600.0,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.cache_dir = cache_dir
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.ttl = ttl
        self.max_entries = max_entries
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS
        )
        # One download per URL at a time: concurrent callers await the same task.
        self._inflight: dict[str, asyncio.Task[Path]] = {}

    def default(self, name: str) -> Path:
        """The shipped prompt ``name`` (one of ``DEFAULTS``)."""
        if name not in DEFAULTS:
            raise ValueError(f"no default prompt {name!r}; there are {sorted(DEFAULTS)}")
        return DEFAULT_DIR / f"{name}.wav"

    async def fetch(self, url: str) -> Path:
        """An 8 kHz mono 16-bit PCM WAV of the mp3 or wav at ``url``; ``PromptError`` if not."""
        try:
            scheme = httpx.URL(url).scheme
        except httpx.InvalidURL as exc:
            raise PromptError(f"invalid URL: {exc}") from exc
        if scheme not in ("http", "https"):
            raise PromptError("only http and https URLs")
        key = hashlib.sha256(url.encode()).hexdigest()
        path = self.cache_dir / f"{key}.wav"
        if _age(path) < self.ttl:
            return path
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(url, path))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        # Shielded: a caller that gives up must not cancel the others' download.
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    def _done(self, key: str, task: asyncio.Task[Path]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have given up already

    async def _refresh(self, url: str, path: Path) -> Path:
        try:
            await self._fetch_into(url, path)
        except PromptError as exc:
            if (age := _age(path)) == math.inf:
                raise
            # A stale copy of a prompt that worked beats failing the call because the
            # customer's server blinked. Its mtime is renewed so the next attempt waits
            # another ttl instead of every call paying the timeout while the server is down.
            log.warning("prompt %s: %s; playing the copy cached %.0f s ago", url, exc, age)
            with contextlib.suppress(OSError):
                os.utime(path)
            return path
        self._prune()
        return path

    async def _fetch_into(self, url: str, path: Path) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix=_TMP_PREFIX, dir=self.cache_dir) as scratch:
                source = Path(scratch) / "source"
                kind = await self._download(url, source)
                converted = Path(scratch) / "out.wav"
                await convert(source, kind, converted)
                # The rename is atomic: rtpengine never sees a half-written file.
                converted.replace(path)
        except OSError as exc:  # a full disk, a cache_dir gone, sox not executable
            raise PromptError(f"cache write failed: {exc.strerror or exc}") from exc

    async def _download(self, url: str, dest: Path) -> str:
        """Writes the body of ``url`` to ``dest``; returns its kind (``"wav"``, ``"mp3"``)."""
        body = bytearray()
        kind: str | None = None
        try:
            # asyncio.timeout bounds the whole exchange; httpx's timeout only each phase.
            async with asyncio.timeout(self.timeout), self._client.stream("GET", url) as response:
                if not response.is_success:
                    raise PromptError(f"HTTP {response.status_code}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > self.max_bytes:
                    raise PromptError(f"larger than {_size(self.max_bytes)}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise PromptError(f"larger than {_size(self.max_bytes)}")
                    if kind is None and len(body) >= 12:
                        kind = audio_kind(bytes(body[:12]))
                        if kind is None:  # no need to read the rest of an HTML page
                            break
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise PromptError(f"timed out after {self.timeout:g} s") from exc
        except httpx.TooManyRedirects as exc:
            raise PromptError(f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx.UnsupportedProtocol as exc:  # a redirect to ftp: or file:
            raise PromptError("only http and https URLs") from exc
        except httpx.ConnectError as exc:
            raise PromptError("could not connect") from exc
        except httpx.HTTPError as exc:
            raise PromptError(f"request failed: {exc or type(exc).__name__}") from exc
        kind = kind or audio_kind(bytes(body))
        if kind is None:
            raise PromptError("not an mp3 or wav file")
        await asyncio.to_thread(dest.write_bytes, body)
        return kind

    def _prune(self) -> None:
        """Keeps the newest ``max_entries`` prompts; drops scratch dirs a crash left behind."""
        entries = sorted(self.cache_dir.glob("*.wav"), key=_age)
        for old in entries[self.max_entries :]:
            old.unlink(missing_ok=True)
        for scratch in self.cache_dir.glob(f"{_TMP_PREFIX}*"):
            if _age(scratch) > STALE_TMP:
                shutil.rmtree(scratch, ignore_errors=True)


def _age(path: Path) -> float:
    """Seconds since ``path`` was written; infinite if it does not exist."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return math.inf


async def convert(source: Path, kind: str, dest: Path) -> None:
    """``source`` (an mp3 or a wav of any rate, channels and encoding) to 8 kHz mono s16 WAV.

    sox, because one small process decodes (WAV natively, mp3 through libmad from Debian's
    libsox-fmt-mp3), resamples and downmixes in about 2 MB of packages; ffmpeg does the same
    but brings some 40 packages and 75 MB on Debian 12, and lame --decode reads only mp3 and
    would still need sox to resample.
    """
    sox = shutil.which("sox")
    if sox is None:
        raise PromptError("conversion failed: sox is not installed")
    command = [
        *(sox, "-V1", "-G"),  # -V1: failures only; -G: lower the gain rather than clip
        *("-t", kind, str(source)),  # the type is the one the magic bytes showed
        *("-t", "wav", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(dest)),
        *("trim", "0", str(MAX_SECONDS)),
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CONVERT_TIMEOUT):
            _, stderr = await process.communicate()
    except TimeoutError as exc:
        raise PromptError(f"conversion timed out after {CONVERT_TIMEOUT:g} s") from exc
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        # "/usr/bin/sox FAIL formats: can't open input file `/…/source': WAVE chunk fmt not
        # found" → "WAVE chunk fmt not found": the reason without our paths.
        detail = _SOX_FAIL.sub("", lines[-1]) if lines else ""
        detail = detail.replace(str(source), "input") or f"sox exited {process.returncode}"
        raise PromptError(f"conversion failed: {detail[:200]}")
    if not await asyncio.to_thread(_has_audio, dest):
        raise PromptError("no audio in the file")


def _has_audio(path: Path) -> bool:
    """Whether sox wrote what rtpengine plays (8 kHz, mono, 16-bit PCM) and not 0 frames."""
    try:
        with wave.open(str(path), "rb") as audio:
            params = (audio.getframerate(), audio.getnchannels(), audio.getsampwidth())
            return params == (8000, 1, 2) and audio.getnframes() > 0
    except (wave.Error, EOFError):
        return False
