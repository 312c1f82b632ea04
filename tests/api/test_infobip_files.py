"""Audio uploads of the Infobip-compatible API (``POST /voice/masking/1/upload`` through
Infobip's official SDK, ``POST /numbers/1/files`` with httpx) against a real ``veil
serve`` on SQLite and PostgreSQL, with the real sox, and files served by a real HTTP
server on 127.0.0.1. The mp3s are made here with sox and lame.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import threading
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from infobip_api_client import ApiClient, Configuration, NumberMaskingApi
from infobip_api_client.exceptions import BadRequestException
from infobip_api_client.models.number_masking_upload_body import NumberMaskingUploadBody

from tests.servers import BACKENDS, Server, database, free_port, veil_server
from tests.utils import Admin, LoopThread
from veil.domain import infobip as rules
from veil.domain.accounts import Account
from veil.store import infobip as repo

TONE_SECONDS = 1.0


@dataclass(frozen=True)
class Audio:
    mp3: bytes  # 1 s of 440 Hz, with an ID3v2 tag
    bare_mp3: bytes  # the same without the tag: starts with an MPEG frame header
    wav: bytes


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    work = tmp_path_factory.mktemp("audio")
    wav, mp3, bare = work / "tone.wav", work / "tone.mp3", work / "bare.mp3"
    for command in (
        ["sox", "-n", "-r", "8000", "-c", "1", str(wav), "synth", str(TONE_SECONDS), "sine", "440"],
        ["lame", "--quiet", "--add-id3v2", "--tt", "Tone", str(wav), str(mp3)],
        ["lame", "--quiet", str(wav), str(bare)],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return Audio(mp3.read_bytes(), bare.read_bytes(), wav.read_bytes())


# --- a real HTTP server for the files named by url -----------------------------------------


class FileServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.files: dict[str, tuple[bytes, bool]] = {}  # path -> (body, send Content-Length)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class FileHandler(BaseHTTPRequestHandler):
    server: FileServer
    protocol_version = "HTTP/1.0"  # without Content-Length, the body ends at the close

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        found = self.server.files.get(self.path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if found is None:
                self.send_error(404)
                return
            body, length = found
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            if length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def files(audio: Audio) -> Iterator[FileServer]:
    server = FileServer()
    too_large = audio.mp3 + bytes(rules.MAX_FILE_BYTES)
    server.files = {
        "/tone.mp3": (audio.mp3, True),
        "/chunked.mp3": (audio.bare_mp3, False),
        "/large.mp3": (too_large, True),
        "/large-unannounced.mp3": (too_large, False),
        "/page.html": (b"<!doctype html><html><body>not audio</body></html>", True),
        "/tone.wav": (audio.wav, True),
    }
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


# --- Veil ---------------------------------------------------------------------------------


@dataclass
class Veil:
    server: Server
    admin: Admin
    files_dir: Path


@pytest.fixture(scope="module", params=BACKENDS)
def veil(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    loop_thread: LoopThread,
) -> Iterator[Veil]:
    workdir = tmp_path_factory.mktemp("infobip-files")
    files_dir = workdir / "files"
    with (
        database(request.param, workdir) as url,
        veil_server(url, workdir, VEIL_SIP_LISTEN="off", VEIL_FILES_DIR=str(files_dir)) as server,
    ):
        admin = Admin(url, loop_thread)
        try:
            yield Veil(server, admin, files_dir)
        finally:
            admin.close()


@pytest.fixture
def account(veil: Veil) -> Account:
    return veil.admin.create_account("Files")


@pytest.fixture
def api(veil: Veil, account: Account) -> NumberMaskingApi:
    return NumberMaskingApi(
        ApiClient(Configuration(host=veil.server.url, api_key=account.auth_token))
    )


def upload_v1(veil: Veil, account: Account, body: Any) -> httpx.Response:
    return httpx.post(
        veil.server.url + "/numbers/1/files",
        json=body,
        headers={"Authorization": f"App {account.auth_token}"},
        timeout=30,
    )


def stored(veil: Veil, account: Account, file_id: str) -> repo.AudioFile:
    async def get() -> repo.AudioFile | None:
        async with veil.admin.db.read() as conn:
            return await repo.get_file(conn, file_id, account.id)

    found = veil.admin.run(get())
    assert found is not None
    return found


def assert_stored(veil: Veil, account: Account, file_id: str, source: bytes, url: str) -> None:
    """The row, the mp3 as sent and its 8 kHz mono 16-bit WAV under the account's dir."""
    assert str(uuid.UUID(file_id)) == file_id
    row = stored(veil, account, file_id)
    assert (row.file_id, row.account_id, row.source_url, row.size) == (
        file_id,
        account.id,
        url,
        len(source),
    )
    directory = (veil.files_dir / str(account.id)).resolve()
    assert Path(row.path) == directory / f"{file_id}.wav"
    assert (directory / f"{file_id}.mp3").read_bytes() == source
    with wave.open(row.path, "rb") as played:
        assert (played.getframerate(), played.getnchannels(), played.getsampwidth()) == (8000, 1, 2)
        seconds = played.getnframes() / 8000
    # mp3 encoders pad the start and end with a frame or so of silence.
    assert TONE_SECONDS <= seconds < TONE_SECONDS + 0.2
    assert row.duration == pytest.approx(seconds, abs=0.001)


def error_body(text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": text}}}


def assert_bad_request(response: httpx.Response, text: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == error_body(text)


@contextlib.contextmanager
def sdk_bad_request(text: str) -> Iterator[None]:
    with pytest.raises(BadRequestException) as info:
        yield
    assert info.value.status == 400
    assert json.loads(info.value.body) == error_body(text)
    details = info.value.data.request_error.service_exception
    assert (details.message_id, details.text) == ("BAD_REQUEST", text)


def files_of(veil: Veil, account: Account) -> list[str]:
    directory = veil.files_dir / str(account.id)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- uploads that work ----------------------------------------------------------------------


def test_upload_by_url(
    veil: Veil, account: Account, api: NumberMaskingApi, files: FileServer, audio: Audio
) -> None:
    url = files.url("/tone.mp3")
    uploaded = api.upload_audio_files(NumberMaskingUploadBody(url=url))
    assert_stored(veil, account, uploaded.file_id, audio.mp3, url)
    # Without Content-Length, and starting with a frame header rather than an ID3 tag.
    url = files.url("/chunked.mp3")
    uploaded = api.upload_audio_files(NumberMaskingUploadBody(url=url))
    assert_stored(veil, account, uploaded.file_id, audio.bare_mp3, url)


def test_upload_base64_content(
    veil: Veil, account: Account, api: NumberMaskingApi, audio: Audio
) -> None:
    # The SDK types content as bytes or str but JSON-encodes bytes as is (TypeError):
    # base64 text is what it can send.
    content = base64.b64encode(audio.mp3).decode()
    uploaded = api.upload_audio_files(NumberMaskingUploadBody(content=content))
    assert_stored(veil, account, uploaded.file_id, audio.mp3, "")


def test_upload_v1_byte_array(veil: Veil, account: Account, audio: Audio) -> None:
    # The spec's "byte array": unsigned, or signed as Java writes bytes.
    for content in (list(audio.bare_mp3), [b - 256 if b > 127 else b for b in audio.bare_mp3]):
        response = upload_v1(veil, account, {"content": content})
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"fileId"}
        assert_stored(veil, account, response.json()["fileId"], audio.bare_mp3, "")
    # Base64 wrapped at 76 characters, as MIME encoders write it.
    wrapped = base64.encodebytes(audio.mp3).decode()
    response = upload_v1(veil, account, {"content": wrapped})
    assert response.status_code == 200, response.text
    assert_stored(veil, account, response.json()["fileId"], audio.mp3, "")


# --- uploads that do not --------------------------------------------------------------------


def test_too_large(veil: Veil, account: Account, api: NumberMaskingApi, files: FileServer) -> None:
    for path in ("/large.mp3", "/large-unannounced.mp3"):
        with sdk_bad_request(f"[url : {rules.FILE_TOO_LARGE}]"):
            api.upload_audio_files(NumberMaskingUploadBody(url=files.url(path)))
    one_too_many = base64.b64encode(b"ID3" + bytes(rules.MAX_FILE_BYTES - 2)).decode()
    with sdk_bad_request(f"[content : {rules.FILE_TOO_LARGE}]"):
        api.upload_audio_files(NumberMaskingUploadBody(content=one_too_many))
    response = upload_v1(veil, account, {"content": [0] * (rules.MAX_FILE_BYTES + 1)})
    assert_bad_request(response, f"[content : {rules.FILE_TOO_LARGE}]")
    # A body no file within the limit could make is refused before it is read whole.
    huge = httpx.post(
        veil.server.url + "/numbers/1/files",
        content=b'{"content": "' + b"A" * (5 * rules.MAX_FILE_BYTES) + b'"}',
        headers={"Authorization": f"App {account.auth_token}"},
        timeout=30,
    )
    assert_bad_request(huge, f"[content : {rules.FILE_TOO_LARGE}]")
    assert files_of(veil, account) == []


def test_not_an_mp3(
    veil: Veil, account: Account, api: NumberMaskingApi, files: FileServer, audio: Audio
) -> None:
    for path in ("/page.html", "/tone.wav"):
        with sdk_bad_request(f"[url : {rules.FILE_NOT_MP3}]"):
            api.upload_audio_files(NumberMaskingUploadBody(url=files.url(path)))
    for content in (b"just some text, not audio", audio.wav, b"ID"):
        with sdk_bad_request(f"[content : {rules.FILE_NOT_MP3}]"):
            api.upload_audio_files(
                NumberMaskingUploadBody(content=base64.b64encode(content).decode())
            )
    # Starts like an MPEG frame, but sox finds no audio in what follows.
    fake = bytes([0xFF, 0xFB, 0x90, 0x00]) + b"this is not audio at all " * 100
    response = upload_v1(veil, account, {"content": list(fake)})
    assert response.status_code == 400
    text = response.json()["requestError"]["serviceException"]["text"]
    assert text.startswith("[content : the file is not a playable mp3 (")
    assert files_of(veil, account) == []  # nothing left behind


def test_unreachable_or_missing(
    veil: Veil, account: Account, api: NumberMaskingApi, files: FileServer
) -> None:
    for url, reason in (
        (f"http://127.0.0.1:{free_port()}/tone.mp3", "could not connect"),
        (files.url("/missing.mp3"), "HTTP 404"),
    ):
        with sdk_bad_request(f"[url : the file could not be fetched: {reason}]"):
            api.upload_audio_files(NumberMaskingUploadBody(url=url))


def test_request_validation(veil: Veil, account: Account, files: FileServer) -> None:
    for body, text in (
        ({}, rules.FILE_MISSING),
        ({"url": "", "content": ""}, rules.FILE_MISSING),
        ({"url": "ftp://127.0.0.1/tone.mp3"}, "[url : must be a valid http or https URL]"),
        ({"url": 42}, "[url : must be a valid http or https URL]"),
        (
            {"url": files.url("/tone.mp3"), "content": "SUQz"},
            "[url : give url or content, not both]",
        ),
        ({"content": "not base64!"}, "[content : must be base64 text or an array of bytes]"),
        ({"content": [1, 2, 256]}, "[content : must be base64 text or an array of bytes]"),
        ({"content": [1, True]}, "[content : must be base64 text or an array of bytes]"),
        ({"content": {"a": 1}}, "[content : must be base64 text or an array of bytes]"),
    ):
        assert_bad_request(upload_v1(veil, account, body), text)


def test_files_belong_to_their_account(
    veil: Veil, account: Account, api: NumberMaskingApi, audio: Audio
) -> None:
    content = base64.b64encode(audio.mp3).decode()
    file_id = api.upload_audio_files(NumberMaskingUploadBody(content=content)).file_id
    other = veil.admin.create_account("Other")
    sub = veil.admin.create_account("Sub", parent=account)

    async def lookup(owner: Account) -> repo.AudioFile | None:
        async with veil.admin.db.read() as conn:
            return await repo.get_file(conn, file_id, owner.id)

    assert veil.admin.run(lookup(account)) is not None
    assert veil.admin.run(lookup(other)) is None
    assert veil.admin.run(lookup(sub)) is None
    assert files_of(veil, other) == []


def test_upload_needs_credentials(veil: Veil, files: FileServer) -> None:
    for path in ("/numbers/1/files", "/voice/masking/1/upload"):
        response = httpx.post(veil.server.url + path, json={"url": files.url("/tone.mp3")})
        assert response.status_code == 401
        assert response.json() == {
            "requestError": {
                "serviceException": {"messageId": "UNAUTHORIZED", "text": rules.INVALID_LOGIN}
            }
        }
