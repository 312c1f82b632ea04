"""Call recordings: rtpengine writes each recorded call as a pcap in its spool; when the
call is over, Veil turns it into the session's WAV or MP3 (veil.media.recording) and
removes the pcap.

Decoding is CPU-bound Python, so it runs in a worker process: a long recording must not
hold the event loop (and the GIL) that sets up calls.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from veil.media.recording import convert

log = logging.getLogger("veil.calls")

# How long to wait for rtpengine to close a call's pcap after the delete.
_CLOSE_WAIT = 5.0


class RecordingFailed(Exception):
    """A call's recording could not be produced; the text says why."""


class Recorder:
    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self._pool: ProcessPoolExecutor | None = None

    async def convert(self, call_id: str, out: Path, fmt: Literal["wav", "mp3"]) -> float:
        """Write the recording of rtpengine call ``call_id`` to ``out``; its duration."""
        pcap = await self._closed_pcap(call_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        if self._pool is None:
            # spawn, not fork: forking a process with an event loop and threads is unsafe.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        try:
            seconds = await loop.run_in_executor(self._pool, _convert, pcap, out, fmt)
        except Exception as exc:
            # The pcap stays in the spool (its path is in the reason): a recording is
            # never thrown away because Veil could not convert it.
            raise RecordingFailed(f"conversion failed: {exc}") from exc
        self.discard(call_id)
        return seconds

    async def _closed_pcap(self, call_id: str) -> Path:
        """The call's pcap once rtpengine has closed it (its metadata file then leaves
        the spool's tmp directory)."""
        deadline = asyncio.get_running_loop().time() + _CLOSE_WAIT
        while True:
            pcaps = list((self.spool / "pcaps").glob(f"{call_id}-*.pcap"))
            pending = list((self.spool / "tmp").glob(f"*{call_id}*"))
            if pcaps and not pending:
                return pcaps[0]
            if asyncio.get_running_loop().time() > deadline:
                raise RecordingFailed("the media engine wrote no recording for the call")
            await asyncio.sleep(0.05)

    def discard(self, call_id: str) -> None:
        """Remove what rtpengine wrote for the call (pcap and metadata)."""
        for pattern in (f"pcaps/{call_id}-*", f"metadata/*{call_id}*", f"tmp/*{call_id}*"):
            for path in self.spool.glob(pattern):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _convert(pcap: Path, out: Path, fmt: Literal["wav", "mp3"]) -> float:
    return convert(pcap, out, fmt=fmt)
