"""Audio files for the Infobip-compatible API (``POST /numbers/1/files``, ``POST
/voice/masking/1/upload``): what the ``audio`` and ``captureDtmf`` commands play.

The body names the file by ``url`` (Veil fetches it) or carries it as ``content``: base64
text, which is what Infobip's SDKs send, or a JSON array of bytes (the spec's "byte
array"). Infobip takes mp3 files up to 4 MB; so does Veil, and it checks the content,
not the name or the Content-Type: the bytes must start like an mp3 (an ID3 tag or an
MPEG audio frame header), and sox must decode them. Every failure is an
``InvalidRequest`` naming the field and the reason.

Both forms are kept under ``<files_dir>/<account id>/``: ``<fileId>.mp3`` as sent and
``<fileId>.wav``, the 8 kHz mono 16-bit WAV the media engine plays (converted by the
prompts' converter, so also cut at its 5 minutes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from veil.domain import infobip as rules
from veil.domain.accounts import Account
from veil.domain.delivery import url_problem
from veil.domain.errors import InvalidRequest
from veil.domain.ids import new_uuid
from veil.media.prompts import PromptError, audio_kind, convert
from veil.service.context import ServiceContext
from veil.store import infobip as repo
from veil.store.infobip import AudioFile
from veil.webhooks.delivery import private_target

FETCH_TIMEOUT = 10.0  # seconds for the whole download of a file named by url
MAX_REDIRECTS = 3
# Base64 takes 4 characters for 3 bytes: longer text cannot decode to an allowed file.
_MAX_BASE64 = (rules.MAX_FILE_BYTES + 2) // 3 * 4
_HEAD = 12  # bytes ``audio_kind`` looks at


@dataclass(frozen=True, slots=True)
class FileSource:
    """Where an upload's bytes come from: ``content`` when the body carries them, else
    ``url``."""

    url: str = ""
    content: bytes | None = None

    @property
    def field(self) -> str:
        return "url" if self.content is None else "content"


def file_source(body: dict[str, Any]) -> FileSource:
    """The upload request's ``url`` or ``content`` (exactly one of them), checked."""
    url, content = body.get("url"), body.get("content")
    if url not in (None, "") and content not in (None, "", []):
        raise InvalidRequest("[url : give url or content, not both]")
    if content not in (None, "", []):
        return FileSource(content=_decode(content))
    if url in (None, ""):
        raise InvalidRequest(rules.FILE_MISSING)
    if not isinstance(url, str) or url_problem(url.strip()) is not None:
        raise InvalidRequest("[url : must be a valid http or https URL]")
    return FileSource(url=url.strip())


def _decode(content: object) -> bytes:
    too_large = InvalidRequest(f"[content : {rules.FILE_TOO_LARGE}]")
    if isinstance(content, str):
        text = "".join(content.split())  # line breaks, as some encoders wrap at 76
        if len(text) > _MAX_BASE64:
            raise too_large
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("[content : must be base64 text or an array of bytes]") from None
    elif isinstance(content, list):
        if len(content) > rules.MAX_FILE_BYTES:
            raise too_large
        # Java's byte is signed: -128..127 are bytes too.
        if not all(type(b) is int and -128 <= b <= 255 for b in content):
            raise InvalidRequest("[content : must be base64 text or an array of bytes]")
        data = bytes(b & 0xFF for b in content)
    else:
        raise InvalidRequest("[content : must be base64 text or an array of bytes]")
    if len(data) > rules.MAX_FILE_BYTES:
        raise too_large
    return data


class _FetchFailed(Exception):
    """Why the file at the URL could not be had."""


async def _download(url: str, block_private: bool) -> bytes:
    """The body at ``url``: streamed, and given up as soon as it is larger than allowed
    or does not start like an mp3."""

    async def refuse_private(request: httpx.Request) -> None:  # every hop of a redirect
        refusal = await private_target(str(request.url))
        if refusal is not None:
            raise _FetchFailed(refusal)

    hooks: dict[str, list[Any]] = {"request": [refuse_private]} if block_private else {}
    body = bytearray()
    try:
        async with (
            asyncio.timeout(FETCH_TIMEOUT),  # the whole exchange; httpx's is per phase
            httpx.AsyncClient(
                timeout=FETCH_TIMEOUT,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                event_hooks=hooks,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                raise _FetchFailed(f"HTTP {response.status_code}")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > rules.MAX_FILE_BYTES:
                raise _FetchFailed(rules.FILE_TOO_LARGE)
            async for chunk in response.aiter_bytes():
                before = len(body)
                body += chunk
                if len(body) > rules.MAX_FILE_BYTES:
                    raise _FetchFailed(rules.FILE_TOO_LARGE)
                if before < _HEAD <= len(body) and audio_kind(bytes(body[:_HEAD])) != "mp3":
                    raise _FetchFailed(rules.FILE_NOT_MP3)  # no need to read an HTML page
    except (TimeoutError, httpx.TimeoutException):
        raise _FetchFailed(f"timed out after {FETCH_TIMEOUT:g} s") from None
    except httpx.TooManyRedirects:
        raise _FetchFailed(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.UnsupportedProtocol:  # a redirect to ftp: or file:
        raise _FetchFailed("only http and https URLs") from None
    except httpx.ConnectError:
        raise _FetchFailed("could not connect") from None
    except httpx.HTTPError as exc:
        raise _FetchFailed(f"request failed: {exc or type(exc).__name__}") from None
    except OSError:  # the private-target check could not resolve the host
        raise _FetchFailed("could not resolve the host") from None
    return bytes(body)


async def upload_file(
    ctx: ServiceContext,
    principal: Account,
    body: dict[str, Any],
    files_dir: Path,
    *,
    block_private: bool = False,
) -> str:
    """Store the request's mp3 for the principal's account; its new ``fileId``.

    ``block_private`` refuses URLs whose host is a private or loopback address (the
    operator's ``VEIL_WEBHOOK_BLOCK_PRIVATE`` rule for callbacks applies to fetches too).
    """
    source = file_source(body)
    if source.content is not None:
        data = source.content
    else:
        try:
            data = await _download(source.url, block_private)
        except _FetchFailed as exc:
            reason = str(exc)
            if reason not in (rules.FILE_TOO_LARGE, rules.FILE_NOT_MP3):
                reason = f"the file could not be fetched: {reason}"
            raise InvalidRequest(f"[url : {reason}]") from None
    if audio_kind(data[:_HEAD]) != "mp3":
        raise InvalidRequest(f"[{source.field} : {rules.FILE_NOT_MP3}]")

    file_id = new_uuid()
    directory = (files_dir / str(principal.id)).resolve()
    mp3 = directory / f"{file_id}.mp3"
    wav = directory / f"{file_id}.wav"
    scratch = directory / f".{file_id}.wav.tmp"
    try:
        await asyncio.to_thread(_write, mp3, data)
        await convert(mp3, "mp3", scratch)
        scratch.replace(wav)  # whoever plays it never sees a half-written file
        duration = await asyncio.to_thread(_duration, wav)
        async with ctx.db.write() as conn:
            await repo.insert_file(
                conn,
                AudioFile(
                    file_id=file_id,
                    account_id=principal.id,
                    source_url=source.url,
                    size=len(data),
                    duration=duration,
                    path=str(wav),
                    created_time=ctx.clock.now(),
                ),
            )
    except BaseException as exc:
        for path in (mp3, wav, scratch):
            path.unlink(missing_ok=True)
        if isinstance(exc, PromptError):  # sox could not make audio of it
            raise InvalidRequest(
                f"[{source.field} : the file is not a playable mp3 ({exc})]"
            ) from None
        raise
    return file_id


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _duration(path: Path) -> float:
    """Seconds of audio in a WAV file, to the millisecond."""
    with wave.open(str(path), "rb") as audio:
        return round(audio.getnframes() / audio.getframerate(), 3)
