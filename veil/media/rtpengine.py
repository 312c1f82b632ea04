"""rtpengine as Veil's own child process (``VEIL_MEDIA=auto``): configured by Veil,
userspace only, supervised (restarted when it dies).

The configuration is the one verified on this kind of machine
(../shared/research/sip-media.md section 3): ``table = -1`` (no kernel module),
one interface, pcap recording, DTMF events as JSON over UDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from veil.media.ng import NgClient, NgError, NgTimeout

log = logging.getLogger("veil.media")

RESTART_DELAY = 1.0  # seconds before a crashed rtpengine is started again
START_TIMEOUT = 10.0  # seconds for a new rtpengine to answer ping


def find_binary() -> str | None:
    return shutil.which("rtpengine")


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RtpengineConfig:
    interface: str  # the media address parties see (Veil's SIP address by default)
    ng_port: int
    dtmf_port: int
    port_min: int
    port_max: int
    recording_dir: Path
    workdir: Path

    def text(self) -> str:
        return "\n".join(
            [
                "[rtpengine]",
                "table = -1",
                f"interface = {self.interface}",
                f"listen-ng = 127.0.0.1:{self.ng_port}",
                "foreground = true",
                "log-stderr = true",
                "log-level = 5",
                f"port-min = {self.port_min}",
                f"port-max = {self.port_max}",
                # Veil ends every call it anchors (and call_time_limit caps them at a
                # day): rtpengine must not drop a held call whose RTP stopped.
                "timeout = 86400",
                # Media goes where the SDP says, never where packets come from: the
                # trunk is no NAT, and learning would let anyone who sends RTP to an
                # open port take a call's audio ("RTP bleed").
                "endpoint-learning = off",
                f"recording-dir = {self.recording_dir}",
                "recording-method = pcap",
                f"dtmf-log-dest = 127.0.0.1:{self.dtmf_port}",
                "",
            ]
        )


class SupervisedRtpengine:
    """One rtpengine process: started, watched, restarted, stopped by its PID."""

    def __init__(self, binary: str, config: RtpengineConfig) -> None:
        self.binary = binary
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def ng_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.config.ng_port

    async def start(self) -> None:
        await self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _spawn(self) -> None:
        config = self.config
        config.workdir.mkdir(parents=True, exist_ok=True)
        config.recording_dir.mkdir(parents=True, exist_ok=True)
        path = config.workdir / "rtpengine.conf"
        path.write_text(config.text())
        log_file = (config.workdir / "rtpengine.log").open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.binary,
                f"--config-file={path}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        finally:
            log_file.close()
        await self._wait_ready()
        log.info("rtpengine %d up: NG on %s:%d", self.process.pid, *self.ng_address)

    async def _wait_ready(self) -> None:
        client = await NgClient.connect(*self.ng_address, timeout=0.2, retries=0)
        try:
            deadline = asyncio.get_running_loop().time() + START_TIMEOUT
            while True:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(
                        f"rtpengine exited with {self.process.returncode}; "
                        f"see {self.config.workdir / 'rtpengine.log'}"
                    )
                with contextlib.suppress(NgTimeout, NgError, OSError):
                    await client.ping()
                    return
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError("rtpengine did not answer ping")
                await asyncio.sleep(0.05)
        finally:
            client.close()

    async def _watch(self) -> None:
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("rtpengine exited with %s; restarting (restart %d)", code, self.restarts)
            await asyncio.sleep(RESTART_DELAY)
            try:
                await self._spawn()
            except Exception:
                log.exception("rtpengine restart failed; retrying")

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()
