"""A real rtpengine for the media tests: userspace only, loopback only, one per session.

The configuration is the one verified in shared/research/sip-media.md section 3. It is
started by the fixture below and stopped by its PID when the session ends.
"""

from __future__ import annotations

import itertools
import math
import shutil
import socket
import struct
import subprocess
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port
from veil.media import bencode

HOST = "127.0.0.1"
# 200 parallel calls take up to 4 ports each (RTP + RTCP on both sides).
PORT_BLOCK = 1000


@dataclass(frozen=True)
class Rtpengine:
    host: str
    ng_port: int
    dtmf_port: int  # dtmf-log-dest: a test binds a DtmfListener here
    port_min: int
    port_max: int
    spool: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_udp_port() -> int:
    """A port free for both TCP (tests.servers.free_port) and UDP on 127.0.0.1."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


_cookies = itertools.count(1)


def _ping(port: int, timeout: float = 0.2) -> bool:
    """One raw NG ping (independent of the client under test)."""
    cookie = f"fixture-{uuid.uuid4().hex}-{next(_cookies)}".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(cookie + b" " + bencode.encode({"command": "ping"}), (HOST, port))
        try:
            data = sock.recv(65535)
        except OSError:  # timeout, or ICMP port unreachable while it starts
            return False
    return data == cookie + b" d6:result4:ponge"


@pytest.fixture(scope="session")
def rtpengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rtpengine]:
    binary = shutil.which("rtpengine") or "/usr/bin/rtpengine"
    workdir = tmp_path_factory.mktemp("rtpengine")
    spool = workdir / "spool"
    spool.mkdir()
    ng_port, dtmf_port = free_udp_port(), free_udp_port()
    # A random block per run, so parallel runs on one machine rarely meet.
    # Below the ranges tests/servers.py gives Veil's own rtpengines (10000-30999) and
    # the kernel's ephemeral ports: no two rtpengines of a test run share a port.
    port_min = 8000
    port_max = port_min + PORT_BLOCK - 1
    config = workdir / "rtpengine.conf"
    config.write_text(
        "\n".join(
            [
                "[rtpengine]",
                "table = -1",
                f"interface = {HOST}",
                f"listen-ng = {HOST}:{ng_port}",
                "foreground = true",
                "log-stderr = true",
                "log-level = 6",
                f"port-min = {port_min}",
                f"port-max = {port_max}",
                "timeout = 60",
                f"recording-dir = {spool}",
                "recording-method = pcap",
                f"dtmf-log-dest = {HOST}:{dtmf_port}",
                "",
            ]
        )
    )
    log_path = workdir / "rtpengine.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--config-file={config}"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    engine = Rtpengine(HOST, ng_port, dtmf_port, port_min, port_max, spool, log_path, process)
    try:
        deadline = time.monotonic() + 10
        while not _ping(ng_port):
            if process.poll() is not None:
                raise RuntimeError(f"rtpengine exited {process.returncode}:\n{engine.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rtpengine does not answer ping:\n{engine.log()}")
            time.sleep(0.05)
        yield engine
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 440 Hz, 8 kHz mono 16-bit: what play media gets."""
    path = tmp_path_factory.mktemp("media") / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(
            b"".join(
                struct.pack("<h", round(8000 * math.sin(2 * math.pi * 440 * n / 8000)))
                for n in range(8000)
            )
        )
    return path
