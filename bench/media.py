"""Concurrent anchored calls with RTP both ways and recording on: packet loss and CPU.

A real ``veil serve`` (SQLite) runs its own rtpengine (``VEIL_MEDIA=auto``); every
session is created with ``record=true`` (MP3; ``--no-record``: false). For each step of
the ramp (``--steps``), SIPp calls through Veil as the inbound trunk
(``bench/scenarios/uac_media_bench.xml``): each call plays SIPp's bundled G.711 A-law
recording (236 packets of 30 ms) over and over, as one RTP stream (sequence numbers and
timestamps run on), long enough for every call of the step to be up at once for
``--hold`` seconds. SIPp answers as the callee (``uas_media_bench.xml``) with an SDP
naming this bench's RTP counter, a process of its own that counts every packet rtpengine
relays to the callee and echoes it back, so rtpengine carries (and records) audio in
both directions.

Packet loss, per step:
- caller -> callee, end to end: packets SIPp played (the packets of the pcap it plays,
  a deterministic count) against packets the counter received;
- callee -> caller: packets the counter echoed against packets rtpengine relayed in
  that direction (rtpengine's own ``relayedpackets`` total over the step, less what it
  relayed to the counter). SIPp does not read the RTP it receives, so the last hop into
  the caller's socket is not counted.
Kernel drops on rtpengine's own sockets and on the counter's socket (``/proc/net/udp``)
are reported beside them: the counter's drops would be the bench's, not Veil's, loss.

CPU: utime + stime from ``/proc/<pid>/stat`` of rtpengine, Veil, each SIPp and the
counter, over the steady state (every call of the step up in rtpengine, sampled each
second), as % of one core; and the whole machine's busy share from ``/proc/stat``.
Veil turns each recording into MP3 when its call ends, in worker processes of its own:
their CPU (with the encoders they run) is counted over the whole step, per recording.

Recordings: files Veil wrote under its VEIL_RECORDINGS_DIR (a temporary directory),
counted after each step once every answered call has one (or nothing changed for 15 s);
"0 (not produced)" if none appeared.

Usage: python bench/media.py [--steps 50,100,200,300] [--hold 20] [--rate 50]
                             [--record | --no-record] [--stop-loss 1.0]
The ramp stops after a step that loses more than --stop-loss % or fails 5% of its calls.
Needs SIPp (Debian ``sip-tester``, pcap play) and rtpengine. Everything on 127.0.0.1;
rtpengine's media ports are 61000-65535 (see MEDIA_PORTS); every process is bounded in
time and stopped by its PID at the end (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sip import injection
from bench.sip import prepare as sip_prepare
from tests.servers import database, free_sip_port, veil_server
from veil.media import bencode

SCENARIOS = Path(__file__).parent / "scenarios"
UAC_SCENARIO = SCENARIOS / "uac_media_bench.xml"
UAS_SCENARIO = SCENARIOS / "uas_media_bench.xml"
SOURCE_PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # 236 PCMA packets of 30 ms
PCAP_NAME = "media_bench.pcap"  # what uac_media_bench.xml plays, in SIPp's cwd
PTIME = 0.030  # seconds of audio per packet in SOURCE_PCAP
# Silence after the audio, before the BYE: packets rtpengine has not relayed yet when the
# BYE deletes the call are lost (as in any call), so the bench leaves it time to catch up.
TAIL_MS = 3000
RECORDING_SUFFIX = ".mp3"  # the sessions' record_file_format
# rtpengine's media ports for this run: above the kernel's ephemeral range (32768-60999)
# and away from VEIL_MEDIA_PORTS' default (10000-59999), which every other Veil on the
# machine (a test suite) allocates from 10000 up. rtpengine binds its ports so that a
# second rtpengine can bind the same port; the kernel then hands a port's packets to one
# of the two, and the calls on it lose them (seen here, before this range was set).
MEDIA_PORTS = (61000, 65535)
PORTS_PER_CALL = 4  # RTP and RTCP on each side
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONTROL = b"\x00"  # first byte of the counter's control datagrams (RTP's is 0x80)


# --- sessions --------------------------------------------------------------------------


async def prepare(url: str, count: int, record: bool) -> list[tuple[str, str]]:
    """``count`` sessions with parties of their own, ``record`` as asked."""
    extra = {"record": record, "record_file_format": RECORDING_SUFFIX[1:]}
    return await sip_prepare(url, count, extra, name="bench-media")


Frame = tuple[int, bytes]  # capture time in microseconds, Ethernet frame


def read_pcap(path: Path) -> tuple[bytes, list[Frame]]:
    """The file header and the frames of a classic pcap file."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    frames = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, captured, _ = struct.unpack_from(order + "IIII", data, offset)
        frames.append((seconds * 1_000_000 + micros, data[offset + 16 : offset + 16 + captured]))
        offset += 16 + captured
    if not frames:
        raise RuntimeError(f"{path}: no packets")
    return data[:24], frames


def write_pcap(header: bytes, frames: list[Frame], target: Path, loops: int) -> int:
    """``frames`` (Ethernet/IPv4/UDP/RTP) ``loops`` times over into ``target``, as one
    stream: each loop's RTP sequence numbers, timestamps and capture times continue from
    the last. Returns the packets written. (SIPp sends each frame's UDP payload as it
    is: the same pcap played again, or in a loop, would repeat its sequence numbers
    every 7 s, and a recording of that stream would hold 7 s of audio.)"""
    order = "<" if header[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    record = struct.Struct(order + "IIII")
    span = round(len(frames) * PTIME * 1_000_000)  # one loop, in microseconds
    rtp = 14 + 20 + 8  # Ethernet, IPv4 (no options), UDP
    out = [header]
    for loop in range(loops):
        for index, (micros, frame) in enumerate(frames):
            packet = bytearray(frame)
            sequence, timestamp = struct.unpack_from("!HI", packet, rtp + 2)
            sequence = (sequence + loop * len(frames)) & 0xFFFF
            timestamp = (timestamp + loop * len(frames) * round(PTIME * 8000)) & 0xFFFFFFFF
            struct.pack_into("!HI", packet, rtp + 2, sequence, timestamp)
            if loop or index:
                packet[rtp + 1] &= 0x7F  # the marker bit only on the stream's first packet
            struct.pack_into("!H", packet, rtp - 2, 0)  # UDP checksum: none (IPv4 allows it)
            at = micros + loop * span
            out.append(record.pack(at // 1_000_000, at % 1_000_000, len(packet), len(packet)))
            out.append(bytes(packet))
    target.write_bytes(b"".join(out))
    return loops * len(frames)


# --- the callee's RTP counter (a process of its own) -------------------------------------


def _counter_main(conn: Connection) -> None:
    """Count each RTP packet per source (one source per call: rtpengine's port for the
    callee's side) and echo it back. The inter-arrival variation of consecutive packets
    (arrival gap minus RTP timestamp gap, 1 ms buckets) says how on time they came.
    A control datagram from the parent's address (first byte 0) asks for the counts
    (which are then reset) or for the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(1)
    parent = os.getppid()
    conn.send(sock.getsockname()[1])
    unpack = struct.Struct("!HI").unpack_from
    now = time.monotonic

    def fresh() -> tuple[dict[int, int], dict[int, tuple[int, int, float]], list[int], list[int]]:
        return {}, {}, [0] * 1001, [0, 0]  # per source, last, histogram, [echoed, other]

    counts, last, histogram, totals = fresh()
    while True:
        try:
            data, source = sock.recvfrom(4096)
        except TimeoutError:
            if os.getppid() != parent:  # the bench is gone: so is the counter
                return
            continue
        if data[:1] == CONTROL:
            command = data[1:]
            conn.send(
                {
                    "received": sum(counts.values()),
                    "sources": len(counts),
                    "per_source": counts,
                    "echoed": totals[0],
                    "other": totals[1],
                    "histogram": histogram,
                }
            )
            if command == b"stop":
                sock.close()
                return
            counts, last, histogram, totals = fresh()
            continue
        sock.sendto(data, source)
        totals[0] += 1
        if len(data) < 12 or data[0] >> 6 != 2:
            totals[1] += 1
            continue
        port = source[1]
        counts[port] = counts.get(port, 0) + 1
        arrival = now()
        sequence, timestamp = unpack(data, 2)
        previous = last.get(port)
        last[port] = (sequence, timestamp, arrival)
        if previous is not None and sequence == (previous[0] + 1) & 0xFFFF:
            # 8 kHz clock: 8 timestamp units per ms.
            deviation = abs((arrival - previous[2]) * 1000 - (timestamp - previous[1]) / 8)
            histogram[min(int(deviation), 1000)] += 1


class Counter:
    """The RTP counter process: started, asked for its counts, stopped by its PID."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_counter_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        if not self._conn.poll(10):
            self.stop()
            raise RuntimeError("the RTP counter did not start")
        self.port: int = self._conn.recv()
        self._control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._control.bind((LOOPBACK, 0))

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def report(self) -> dict[str, Any]:
        """Counts since the last report (and start again from zero)."""
        self._control.sendto(CONTROL + b"report", (LOOPBACK, self.port))
        if not self._conn.poll(10):
            raise RuntimeError("the RTP counter did not answer")
        result: dict[str, Any] = self._conn.recv()
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self._control.sendto(CONTROL + b"stop", (LOOPBACK, self.port))
            self.process.join(3)
        if self.process.is_alive():
            self.process.kill()  # SIGKILL to its PID
            self.process.join(3)
        with contextlib.suppress(AttributeError):
            self._control.close()
        self._conn.close()


# --- rtpengine: discovery and NG --------------------------------------------------------


@dataclass
class Engine:
    pid: int
    ng_port: int
    workdir: Path  # Veil's generated config dir (/tmp/veil-rtpengine-*)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, name) of the processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(stat.parent.name), name))
    return found


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime + stime + cutime + cstime) of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    return table


def descendants_ticks(root: int, skip: int) -> int:
    """CPU ticks of ``root``'s descendants except ``skip`` and its own: Veil's recording
    workers and the encoders they run (an ended child's time is in its parent's
    cutime/cstime, so nothing is counted twice or lost)."""
    table = process_table()
    kids: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        kids.setdefault(parent, []).append(pid)
    total, stack = 0, [pid for pid in kids.get(root, []) if pid != skip]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(p for p in kids.get(pid, []) if p != skip)
    return total


def find_engine(veil_pid: int, timeout: float = 15) -> Engine:
    """Veil's own rtpengine: its child process, and the NG port in the config file its
    command line names (Veil picks the port at random and logs it only at info level)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, name in children(veil_pid):
            if name != "rtpengine":
                continue
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            for argument in arguments:
                if argument.startswith(b"--config-file="):
                    config = Path(argument.split(b"=", 1)[1].decode())
                    for line in config.read_text().splitlines():
                        if line.startswith("listen-ng"):
                            port = int(line.rsplit(":", 1)[1])
                            return Engine(pid, port, config.parent)
        time.sleep(0.2)
    raise RuntimeError("Veil's rtpengine was not found (is rtpengine installed?)")


class Ng:
    """A small synchronous NG client (veil.media.ng's is asyncio): for ``statistics``."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((LOOPBACK, port))
        self.sock.settimeout(2)
        self.prefix = secrets.token_hex(6)
        self.counter = 0

    def command(self, name: str) -> dict[str, Any]:
        self.counter += 1
        cookie = f"{self.prefix}_{self.counter}".encode()
        self.sock.send(cookie + b" " + bencode.encode({"command": name}))
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                self.sock.send(cookie + b" " + bencode.encode({"command": name}))
                continue
            got, _, body = data.partition(b" ")
            if got == cookie:
                reply = bencode.decode(body, text=True)
                assert isinstance(reply, dict)
                return {str(k): v for k, v in reply.items()}
        raise TimeoutError(f"rtpengine did not answer {name!r}")

    def statistics(self) -> dict[str, Any]:
        stats = self.command("statistics")["statistics"]
        assert isinstance(stats, dict)
        return stats

    def close(self) -> None:
        self.sock.close()


# --- /proc ---------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process (all its threads), in clock ticks; None once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def udp_drops() -> dict[int, int]:
    """Kernel receive drops of every IPv4 UDP socket, by inode."""
    drops = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 13:
            drops[int(fields[9])] = int(fields[12])
    return drops


def sipp_pid(wrapper: int) -> int | None:
    """SIPp's PID under timeout(1)."""
    for pid, name in children(wrapper):
        if name == "sipp":
            return pid
    return None


# --- SIPp --------------------------------------------------------------------------------


class SippProcess:
    """One SIPp under timeout(1), in a process group of its own; stopped by its PID."""

    def __init__(self, workdir: Path, name: str, arguments: list[str], seconds: float) -> None:
        self.stats = workdir / f"{name}.csv"
        self.errors = workdir / f"{name}.errors"
        command = ["timeout", "-k", "2", f"{seconds:.0f}s", "sipp", *arguments]
        command += ["-i", LOOPBACK, "-ci", LOOPBACK, "-cp", str(free_sip_port()), "-nostdin"]
        command += ["-timeout", f"{seconds - 5:.0f}s", "-trace_stat", "-stf", str(self.stats)]
        command += ["-fd", "1", "-trace_err", "-error_file", str(self.errors)]
        self.command = command
        with (workdir / f"{name}.out").open("wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=output,
                start_new_session=True,
            )
        self.pid: int | None = None  # SIPp's own, once it runs

    def find_pid(self) -> int | None:
        if self.pid is None:
            self.pid = sipp_pid(self.process.pid)
        return self.pid

    def stop(self) -> int:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)  # timeout(1) passes it on
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # the group we created
                self.process.wait(3)
        return self.process.returncode

    def rows(self) -> list[dict[str, str]]:
        try:
            with self.stats.open() as stats:
                return list(csv.DictReader(stats, delimiter=";"))
        except FileNotFoundError:
            return []


def wait_udp_bound(port: int, timeout: float = 5) -> None:
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            if line.split()[1] == wanted:
                return
        time.sleep(0.05)
    raise RuntimeError(f"SIPp did not bind 127.0.0.1:{port}")


# --- one step -------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    sessions: int
    ports_used: int
    cpu: dict[str, int | None]
    machine: tuple[int, int]


@dataclass
class StepResult:
    calls: int
    audio: float  # seconds of RTP each call plays
    ok: int = 0
    failed: int = 0
    held: int = 0  # most calls up at once in rtpengine
    sent_ab: int = 0  # packets SIPp played (caller -> callee)
    received_ab: int = 0  # at the callee's counter
    echoed: int = 0  # the counter's echo (callee -> caller)
    relayed_ba: int = 0  # what rtpengine relayed callee -> caller
    relayed_total: int = 0
    relay_errors: int = 0
    late_accounting: int = 0  # relayed packets rtpengine added to its totals after the BYEs
    engine_drops: int = 0  # kernel drops on rtpengine's sockets
    counter_drops: int = 0  # kernel drops on the counter's socket (the bench's own)
    sources: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core
    machine_busy: float = 0.0  # % of all cores
    window: float = 0.0  # seconds of steady state the CPU figures cover
    ports_per_call: float = 0.0
    jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p50, p99, max ms
    recordings: dict[str, int] = field(default_factory=dict)  # new files by suffix
    converted: int = 0  # new recordings outside rtpengine's spool
    converted_bytes: int = 0
    recordings_after: float = 0.0  # s from the last call's end to the last recording
    recorder_cpu: float = 0.0  # CPU s of Veil's recording workers over the whole step
    exit_codes: tuple[int, int] = (0, 0)
    per_call: dict[int, int] = field(default_factory=dict)  # packets received -> calls

    @property
    def lost_ab(self) -> int:
        return self.sent_ab - self.received_ab

    @property
    def lost_ba(self) -> int:
        return self.echoed - self.relayed_ba

    @property
    def loss(self) -> float:
        sent = self.sent_ab + self.echoed
        return 100 * (self.lost_ab + self.lost_ba) / sent if sent else float("nan")


def histogram_percentile(histogram: list[int], q: float) -> float:
    total = sum(histogram)
    if not total:
        return float("nan")
    running = 0
    for value, count in enumerate(histogram):
        running += count
        if running >= q * total:
            return float(value)
    return float(len(histogram) - 1)


def files_by_suffix(directory: Path) -> dict[str, int]:
    """Files under the recordings directory by suffix; rtpengine's spool (pcaps and
    metadata not yet converted) as "spool" + suffix."""
    found: dict[str, int] = {}
    if directory.exists():
        for path in directory.rglob("*"):
            if path.is_file():
                spool = "spool" in path.relative_to(directory).parts
                key = ("spool " if spool else "") + (path.suffix or "(none)")
                found[key] = found.get(key, 0) + 1
    return found


def converted(files: dict[str, int]) -> int:
    """Finished recordings (a WAV outside the spool is a conversion under way)."""
    return files.get(RECORDING_SUFFIX, 0)


def converted_bytes(directory: Path) -> int:
    """Bytes of the finished recordings."""
    if not directory.exists():
        return 0
    return sum(
        path.stat().st_size
        for path in directory.rglob("*" + RECORDING_SUFFIX)
        if path.is_file() and "spool" not in path.relative_to(directory).parts
    )


def run_step(
    *,
    calls: int,
    source: tuple[bytes, list[Frame]],
    workdir: Path,
    inf: Path,
    veil: int,
    veil_pid: int,
    uas_port: int,
    engine: Engine,
    ng: Ng,
    counter: Counter,
    rate: int,
    hold: float,
    recordings: Path,
    record: bool,
    processes: list[SippProcess],
) -> StepResult:
    ramp = calls / rate
    header, frames = source
    loops = max(1, math.ceil((ramp + hold) / (len(frames) * PTIME)))
    per_call = write_pcap(header, frames, workdir / PCAP_NAME, loops)
    audio_ms = math.ceil(per_call * PTIME * 1000)
    result = StepResult(calls=calls, audio=audio_ms / 1000)
    call_seconds = (audio_ms + TAIL_MS) / 1000
    seconds = ramp + call_seconds + 40  # the bound on every process of the step
    files_before = files_by_suffix(recordings)
    bytes_before = converted_bytes(recordings)
    recorder_before = descendants_ticks(veil_pid, engine.pid)
    counter.report()  # start from zero
    before = ng.statistics()["totalstatistics"]
    engine_inodes: dict[int, int] = {}  # inode -> drops when first seen
    engine_drops: dict[int, int] = {}  # inode -> most drops seen
    counter_inodes = socket_inodes(counter.pid)
    counter_before = sum(udp_drops().get(i, 0) for i in counter_inodes)

    uas = SippProcess(
        workdir,
        f"uas-{calls}",
        [
            *("-sf", str(UAS_SCENARIO), "-p", str(uas_port), "-m", str(calls)),
            *("-key", "rtp_port", str(counter.port)),
        ],
        seconds + 10,
    )
    processes.append(uas)
    wait_udp_bound(uas_port)
    uac = SippProcess(
        workdir,
        f"uac-{calls}",
        [
            *(f"{LOOPBACK}:{veil}", "-sf", str(UAC_SCENARIO), "-p", str(free_sip_port())),
            *("-inf", str(inf), "-r", str(rate), "-m", str(calls), "-l", str(calls)),
            *("-d", str(audio_ms + TAIL_MS)),
        ],
        seconds,
    )
    processes.append(uac)
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds + 5
    while uac.process.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
        pids = {
            "rtpengine": engine.pid,
            "veil": veil_pid,
            "sipp-caller": uac.find_pid(),
            "sipp-callee": uas.find_pid(),
            "counter": counter.pid,
        }
        current = ng.statistics()
        drops = udp_drops()
        for inode in socket_inodes(engine.pid):
            if inode in drops:
                engine_inodes.setdefault(inode, drops[inode])
                engine_drops[inode] = max(engine_drops.get(inode, 0), drops[inode])
        ports = current["interfaces"][0]["ports"]["used"] if current.get("interfaces") else 0
        samples.append(
            Sample(
                at=time.monotonic(),
                sessions=int(current["currentstatistics"]["sessionstotal"]),
                ports_used=int(ports),
                cpu={
                    **{name: cpu_ticks(pid) if pid else None for name, pid in pids.items()},
                    "veil-recorder": descendants_ticks(veil_pid, engine.pid),
                },
                machine=machine_ticks(),
            )
        )
    uac_code = uac.stop()
    with contextlib.suppress(subprocess.TimeoutExpired):
        uas.process.wait(15)
    uas_code = uas.stop()
    result.exit_codes = (uac_code, uas_code)
    # rtpengine ends each call at the BYE: wait for it to be empty, then for its totals,
    # which it adds up from its per-interval counters on a timer.
    calls_ended = time.monotonic()
    early = int(ng.statistics()["totalstatistics"]["relayedpackets"])
    settle = calls_ended + 15
    while time.monotonic() < settle:
        if int(ng.statistics()["currentstatistics"]["sessionstotal"]) == 0:
            break
        time.sleep(0.5)
    time.sleep(2)
    counted = counter.report()
    after = ng.statistics()["totalstatistics"]
    counter_after = sum(udp_drops().get(i, 0) for i in counter_inodes)

    rows = uac.rows()
    if rows:
        result.ok = int(rows[-1]["SuccessfulCall(C)"])
        result.failed = int(rows[-1]["FailedCall(C)"])
    result.held = max((s.sessions for s in samples), default=0)
    result.sent_ab = result.ok * per_call
    result.per_call = {}
    for count in counted["per_source"].values():
        result.per_call[count] = result.per_call.get(count, 0) + 1
    result.received_ab = counted["received"]
    result.sources = counted["sources"]
    result.echoed = counted["echoed"]
    result.counter_drops = counter_after - counter_before
    result.relayed_total = int(after["relayedpackets"]) - int(before["relayedpackets"])
    result.late_accounting = int(after["relayedpackets"]) - early
    result.relay_errors = int(after["relayedpacketerrors"]) - int(before["relayedpacketerrors"])
    # rtpengine -> counter is loopback: each packet relayed that way was counted or dropped
    # at the counter's socket; the rest of rtpengine's relayed packets went to the caller.
    result.relayed_ba = result.relayed_total - result.received_ab - result.counter_drops
    result.engine_drops = sum(engine_drops[i] - engine_inodes[i] for i in engine_drops)
    histogram = counted["histogram"]
    result.jitter = (
        histogram_percentile(histogram, 0.5),
        histogram_percentile(histogram, 0.99),
        float(max((i for i, c in enumerate(histogram) if c), default=0)),
    )

    # Steady state: every call of the step up in rtpengine (else the most that were).
    steady = [s for s in samples if s.sessions >= calls] or [
        s for s in samples if s.sessions == result.held
    ]
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        result.window = last.at - first.at
        for name in first.cpu:
            a, b = first.cpu[name], last.cpu[name]
            if a is not None and b is not None and result.window > 0:
                result.cpu[name] = 100 * (b - a) / CLK_TCK / result.window
        busy = last.machine[0] - first.machine[0]
        total = last.machine[1] - first.machine[1]
        result.machine_busy = 100 * busy / total if total else 0.0
        if result.held:
            result.ports_per_call = max(s.ports_used for s in steady) / result.held

    # Veil converts each recording when its call ends (one worker process): wait until
    # every answered call has one, or nothing has changed for 15 s (bounded: 600 s).
    wanted = converted(files_before) + (result.ok if record else 0)
    last_change, seen = time.monotonic(), files_by_suffix(recordings)
    result.recordings_after = last_change - calls_ended  # at most this, if all are there
    while time.monotonic() - last_change < 15 and time.monotonic() - calls_ended < 600:
        if converted(seen) >= wanted:
            time.sleep(1)  # the last conversion's scratch WAV and pcap go just after
            seen = files_by_suffix(recordings)
            break
        time.sleep(1)
        now = files_by_suffix(recordings)
        if now != seen:
            seen, last_change = now, time.monotonic()
            result.recordings_after = last_change - calls_ended
    result.recorder_cpu = (descendants_ticks(veil_pid, engine.pid) - recorder_before) / CLK_TCK
    result.recordings = {
        key: seen[key] - files_before.get(key, 0)
        for key in seen
        if seen[key] != files_before.get(key, 0)
    }
    result.converted = converted(seen) - converted(files_before)
    result.converted_bytes = converted_bytes(recordings) - bytes_before
    return result


# --- report ---------------------------------------------------------------------------------


def recordings_text(step: StepResult, record: bool) -> str:
    if not step.recordings:
        return "0 (not produced)" if record else "0 (recording off)"
    files = ", ".join(f"{count} {key}" for key, count in sorted(step.recordings.items()))
    size = step.converted_bytes / max(1, step.converted) / 1024
    return (
        f"{files} ({size:.0f} KiB per {RECORDING_SUFFIX} on average), all written within "
        f"{step.recordings_after:.0f} s of the last call's end; "
        f"Veil's recording workers used {step.recorder_cpu:.1f} CPU s "
        f"({1000 * step.recorder_cpu / max(1, step.converted):.0f} ms per recording)"
    )


def describe(step: StepResult, record: bool) -> str:
    cpu = ", ".join(f"{name} {value:.1f}%" for name, value in step.cpu.items())
    lines = [
        f"{step.calls} calls ({step.audio:.1f} s of audio each): {step.ok} ok, "
        f"{step.failed} failed, {step.held} up at once in rtpengine "
        f"(SIPp exit {step.exit_codes[0]}/{step.exit_codes[1]})",
        f"  caller->callee: {step.sent_ab} sent, {step.received_ab} received "
        f"({step.sources} streams), {step.lost_ab} lost",
    ]
    if len(step.per_call) > 1 or step.lost_ab:
        counts = ", ".join(f"{n} x{c}" for n, c in sorted(step.per_call.items()))
        lines.append(f"  packets received per call (packets x calls): {counts}")
    lines.append(
        f"  callee->caller: {step.echoed} sent, {step.relayed_ba} relayed by rtpengine, "
        f"{step.lost_ba} lost"
    )
    if step.failed:
        lines.append(
            "  (failed calls: their packets are in the received counts, not in the sent: "
            "the loss is approximate)"
        )
    lines += [
        f"  loss {step.loss:.3f}%; rtpengine socket drops {step.engine_drops}, relay errors "
        f"{step.relay_errors}; counter socket drops {step.counter_drops} (bench's own); "
        f"rtpengine totals grew by {step.late_accounting} after the last call",
        f"  arrival vs RTP timestamp at the callee: p50 {step.jitter[0]:.0f} ms, "
        f"p99 {step.jitter[1]:.0f} ms, max {step.jitter[2]:.0f} ms",
        f"  CPU over {step.window:.0f} s steady state (% of one core): {cpu or 'n/a'}; "
        f"machine {step.machine_busy:.0f}% busy (of all {os.cpu_count()} cores)",
        f"  rtpengine ports in use: {step.ports_per_call:.1f} per call",
        f"  recordings: {recordings_text(step, record)}",
    ]
    return "\n".join(lines)


def summary(steps: list[StepResult], record: bool) -> None:
    print(
        "\n| calls | ok / failed | up at once | RTP packets sent | lost | loss "
        "| rtpengine CPU | Veil CPU | SIPp CPU (caller + callee) | counter CPU | machine busy "
        "| recordings | recorder CPU per recording |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        sipp = s.cpu.get("sipp-caller", 0) + s.cpu.get("sipp-callee", 0)
        recorded = str(s.converted) if s.converted else "0 (not produced)" if record else "off"
        per = f"{1000 * s.recorder_cpu / s.converted:.0f} ms" if s.converted else "-"
        print(
            f"| {s.calls} | {s.ok} / {s.failed} | {s.held} | {s.sent_ab + s.echoed:,} "
            f"| {s.lost_ab + s.lost_ba} | {s.loss:.3f}% | {s.cpu.get('rtpengine', 0):.0f}% "
            f"| {s.cpu.get('veil', 0):.0f}% | {sipp:.0f}% | {s.cpu.get('counter', 0):.0f}% "
            f"| {s.machine_busy:.0f}% | {recorded} | {per} |"
        )

    def held(threshold: float) -> str:
        """The largest step such that it and every step before it held all its calls
        with a loss under ``threshold`` % (0: no packet lost)."""
        best = "none"
        for s in steps:
            lost = s.lost_ab + s.lost_ba
            if s.failed or s.ok < s.calls or (lost if threshold == 0 else s.loss >= threshold):
                break
            best = str(s.calls)
        return best

    print(
        f"\nmost calls held with 0 packets lost (that step and every smaller one): {held(0)}; "
        f"with < 0.1% lost: {held(0.1)}"
    )
    if record and not any(s.converted for s in steps):
        print("recordings: 0 (not produced): the call plane wrote no converted recording")


# --- main -----------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_engine(engine: Engine | None) -> None:
    """After Veil has stopped: its rtpengine must be gone (Veil stops it; if it did not,
    it is ended here by its PID), and so must its generated config dir."""
    if engine is None:
        return
    marker = str(engine.workdir).encode()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            command = Path(f"/proc/{engine.pid}/cmdline").read_bytes()
        except OSError:
            break  # gone
        if marker not in command:
            break  # the PID is someone else's now
        print(f"rtpengine {engine.pid} outlived Veil: sending {sig.name}", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(engine.pid, sig)
        time.sleep(2)
    if engine.workdir.name.startswith("veil-rtpengine-"):
        shutil.rmtree(engine.workdir, ignore_errors=True)


@contextlib.contextmanager
def stopped_at_end(processes: list[SippProcess]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="50,100,200,300", help="concurrent calls per step")
    parser.add_argument(
        "--hold", type=float, default=20, help="seconds every call of a step is up at once"
    )
    parser.add_argument("--rate", type=int, default=50, help="call setups per second")
    parser.add_argument(
        "--record", action=argparse.BooleanOptionalAction, default=True, help="record=true"
    )
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--stop-loss",
        type=float,
        default=1.0,
        help="stop the ramp after a step losing more than this %% (or failing 5%% of calls)",
    )
    args = parser.parse_args()
    steps = [int(n) for n in args.steps.split(",") if n.strip()]
    most = (MEDIA_PORTS[1] - MEDIA_PORTS[0] + 1) // PORTS_PER_CALL - 50
    if not steps or min(steps) < 1 or max(steps) > most:
        parser.error(f"--steps: 1 to {most} calls each (rtpengine's ports)")
    if not 1 <= args.rate <= 500 or not 1 <= args.hold <= 600:
        parser.error("--rate: 1 to 500 calls/s; --hold: 1 to 600 s")
    if shutil.which("sipp") is None or shutil.which("rtpengine") is None:
        sys.exit("needs sipp (sip-tester) and rtpengine (rtpengine-daemon)")
    source = read_pcap(SOURCE_PCAP)
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C ends the run cleanly even where SIGINT was ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    results: list[StepResult] = []
    engine: Engine | None = None
    processes: list[SippProcess] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="veil-media-")))
        recordings = workdir / "recordings"
        url = stack.enter_context(database(args.backend, workdir))
        print(f"creating {max(steps)} sessions (record={args.record}) ...", flush=True)
        pairs = asyncio.run(prepare(url, max(steps), args.record))
        inf = injection(workdir / "calls.csv", pairs)
        counter = Counter()
        stack.callback(counter.stop)
        uas_port = free_sip_port()
        # Runs after veil_server's exit (which stops Veil, and Veil its rtpengine).
        stack.callback(lambda: stop_engine(engine))
        server = stack.enter_context(
            veil_server(
                url,
                workdir,
                VEIL_TRUNK_OUTBOUND=f"sip:{LOOPBACK}:{uas_port}",
                VEIL_MEDIA="auto",
                VEIL_RECORDINGS_DIR=str(recordings),
                VEIL_MEDIA_PORTS=f"{MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}",
            )
        )
        stack.enter_context(stopped_at_end(processes))
        engine = find_engine(server.process.pid)
        ng = Ng(engine.ng_port)
        stack.callback(ng.close)
        print(
            f"veil {server.process.pid} (SIP 127.0.0.1:{server.sip_port}), rtpengine "
            f"{engine.pid} (NG {engine.ng_port}); {len(source[1])} RTP packets of 30 ms per "
            f"loop of {SOURCE_PCAP.name}",
            flush=True,
        )
        for calls in steps:
            step = run_step(
                calls=calls,
                source=source,
                workdir=workdir,
                inf=inf,
                veil=server.sip_port,
                veil_pid=server.process.pid,
                uas_port=uas_port,
                engine=engine,
                ng=ng,
                counter=counter,
                rate=args.rate,
                hold=args.hold,
                recordings=recordings,
                record=args.record,
                processes=processes,
            )
            results.append(step)
            print(describe(step, args.record), flush=True)
            if step.failed > 0.05 * calls or step.loss > args.stop_loss:
                print(f"stopping the ramp after {calls} calls", flush=True)
                break
        summary(results, args.record)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: every process of the run was stopped", file=sys.stderr)
        sys.exit(130)
