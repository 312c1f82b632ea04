"""Call setups through Veil's B2BUA, with SIPp as the inbound trunk and as the callee.

Three measurements, each against the same SIPp load run directly caller -> callee
(the baseline) in the same run:
- setup rate: calls offered at a fixed rate (default 500/s, short holds); reports the
  achieved rate and failed calls;
- added delay at 100 calls/s: per call, from the caller's INVITE leaving SIPp to the
  callee's INVITE reaching SIPp (both message logs, one clock). Direct, that is the
  loopback transit; through Veil it adds Veil's INVITE in -> INVITE out (parse, route
  by session, build leg B). Veil's share is the difference at the same percentile;
- concurrency: 10,000 established calls held at once; Veil's resident memory per call.

Usage: python bench/sip.py [--rate 500] [--calls 10000] [--concurrent 10000] [--media auto]
Needs SIPp (Debian ``sip-tester``). Every SIPp run is bounded in calls and time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.calls.sipp import parse_message_log
from tests.servers import database, free_sip_port, veil_server
from veil.clock import SystemClock
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store.db import Database

SCENARIO = Path(__file__).parent / "scenarios" / "uac_bench.xml"
POOL = 50  # virtual numbers


async def prepare(
    url: str, count: int, extra: dict[str, object] | None = None, name: str = "bench"
) -> list[tuple[str, str]]:
    """``count`` sessions with parties of their own (and ``extra`` session parameters):
    (caller, virtual number) each."""
    db = Database(url)
    ctx = ServiceContext(db=db, clock=SystemClock())
    try:
        account = await accounts.create_account(ctx, name=name)
        await numbers.add_numbers(ctx, account, [f"+1415{3000000 + i}" for i in range(POOL)])
        pairs = []
        for i in range(count):
            caller = f"+1917{2000000 + i}"
            request = parse_create(
                {
                    "first_party": caller,
                    "second_party": f"+1718{2000000 + i}",
                    "session_expiry": 86400,
                    **(extra or {}),
                },
                Profile.CURRENT,
            )
            session = await sessions.create_session(ctx, account, request)
            pairs.append((caller, session.virtual_number))
        return pairs
    finally:
        await db.dispose()


def injection(path: Path, pairs: list[tuple[str, str]]) -> Path:
    with path.open("w") as out:
        out.write("SEQUENTIAL\n")
        for caller, virtual in pairs:
            out.write(f"{caller};{virtual};\n")
    return path


def callee(
    workdir: Path, port: int, calls: int, seconds: float, trace: Path | None = None
) -> subprocess.Popen[bytes]:
    """SIPp's built-in UAS: 180, 200, then waits for the BYE."""
    command = ["timeout", f"{seconds:g}s", "sipp", "-sn", "uas", "-i", "127.0.0.1"]
    command += ["-ci", "127.0.0.1", "-cp", str(free_sip_port())]
    command += ["-p", str(port), "-m", str(calls), "-nostdin", "-max_socket", "20000"]
    if trace is not None:
        command += ["-trace_msg", "-message_file", str(trace)]
    return subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def caller(
    workdir: Path,
    target: int,
    inf: Path,
    *,
    rate: int,
    calls: int,
    hold_ms: int,
    limit: int,
    seconds: float,
    trace: bool = False,
) -> dict[str, object]:
    """Run the UAC to its end: SIPp's final statistics and, with ``trace``, each call's
    INVITE-sent to 180-received time in ms, from the timestamps of SIPp's message log."""
    tag = f"uac{target}-{rate}-{calls}"
    stats = workdir / f"{tag}.csv"
    messages = workdir / f"{tag}.messages"
    command = ["timeout", f"{seconds:g}s", "sipp", f"127.0.0.1:{target}", "-sf", str(SCENARIO)]
    command += ["-i", "127.0.0.1", "-ci", "127.0.0.1", "-cp", str(free_sip_port())]
    command += ["-p", str(free_sip_port()), "-inf", str(inf), "-r", str(rate)]
    command += ["-m", str(calls), "-l", str(limit), "-d", str(hold_ms), "-nostdin"]
    command += ["-trace_stat", "-stf", str(stats), "-fd", "1"]
    command += ["-max_socket", "20000", "-timeout", f"{seconds - 5:g}s"]
    if trace:
        command += ["-trace_msg", "-message_file", str(messages)]
    started = time.monotonic()
    code = subprocess.run(command, cwd=workdir, capture_output=True).returncode
    elapsed = time.monotonic() - started
    rows = list(csv.DictReader(stats.open(), delimiter=";"))
    last = rows[-1]
    return {
        "exit": code,
        "elapsed": elapsed,
        "successful": int(last["SuccessfulCall(C)"]),
        "failed": int(last["FailedCall(C)"]),
        "retransmissions": int(last["Retransmissions(C)"]),
        "messages": messages if trace else None,
    }


def invite_delays(uac_log: Path, uas_log: Path) -> list[float]:
    """Per call, ms from the caller's INVITE leaving SIPp to the callee's INVITE arriving
    at SIPp: both logs are stamped by the same clock. Calls are matched on the callee's
    number (the session's other party: +1718... for caller +1917...), which both INVITEs
    name, since Veil gives leg B a Call-ID of its own."""
    sent: dict[str, datetime] = {}
    for message in parse_message_log(uac_log.read_bytes()):
        if message.direction == "sent" and message.method == "INVITE":
            caller = _user(message.header("From") or "")
            sent.setdefault("+1718" + caller[5:], message.time)
    delays = []
    for message in parse_message_log(uas_log.read_bytes()):
        if message.direction == "received" and message.method == "INVITE":
            callee = _user(message.header("To") or "")
            direct = callee.startswith("+1415")  # the baseline: the virtual number itself
            key = callee if not direct else None
            if direct:
                caller = _user(message.header("From") or "")
                key = "+1718" + caller[5:]
            if key in sent:
                delays.append((message.time - sent.pop(key)).total_seconds() * 1000)
    return delays


def _user(address: str) -> str:
    return address.split("sip:", 1)[1].split("@", 1)[0] if "sip:" in address else ""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in ticks of 10 ms


def load(
    workdir: Path,
    target: int,
    uas_port: int,
    inf: Path,
    *,
    rate: int,
    calls: int,
    hold_ms: int,
    limit: int,
    trace: bool = False,
) -> dict[str, object]:
    seconds = calls / rate + hold_ms / 1000 + 40
    uas_log = workdir / f"uas-{target}-{rate}.messages"
    uas = callee(workdir, uas_port, calls, seconds + 5, uas_log if trace else None)
    try:
        time.sleep(0.5)
        result = caller(
            workdir,
            target,
            inf,
            rate=rate,
            calls=calls,
            hold_ms=hold_ms,
            limit=limit,
            seconds=seconds,
            trace=trace,
        )
    finally:
        uas.terminate()
        uas.wait(10)
    uac_log = result.pop("messages")
    if isinstance(uac_log, Path):
        result["delays"] = invite_delays(uac_log, uas_log)
        uac_log.unlink()
        uas_log.unlink()
    return result


def report(name: str, result: dict[str, object]) -> None:
    delays = result.get("delays", [])
    assert isinstance(delays, list)
    successful = result["successful"]
    elapsed = result["elapsed"]
    assert isinstance(successful, int) and isinstance(elapsed, float)
    print(
        f"{name}: {successful} ok, {result['failed']} failed, "
        f"{result['retransmissions']} retransmissions, {successful / elapsed:.0f} calls/s "
        f"over {elapsed:.1f} s"
        + (
            f"; INVITE in -> out p50 {percentile(delays, 0.5):.3f} ms "
            f"p99 {percentile(delays, 0.99):.3f} ms ({len(delays)} calls)"
            if delays
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="offered setups per second")
    parser.add_argument("--calls", type=int, default=10000, help="calls in the rate run")
    parser.add_argument("--concurrent", type=int, default=10000, help="calls held at once")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--media", default="off", choices=["off", "auto"], help="auto: anchor calls in rtpengine"
    )
    args = parser.parse_args()
    sessions_needed = max(args.calls, args.concurrent, 2000)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database(args.backend, workdir))
        print(f"creating {sessions_needed} sessions ...", flush=True)
        pairs = asyncio.run(prepare(url, sessions_needed))
        inf = injection(workdir / "calls.csv", pairs)
        uas_port = free_sip_port()
        server = stack.enter_context(
            veil_server(
                url,
                workdir,
                VEIL_TRUNK_OUTBOUND=f"sip:127.0.0.1:{uas_port}",
                VEIL_MEDIA=args.media,
                VEIL_RECORDINGS_DIR=str(workdir / "recordings"),
            )
        )
        pid = server.process.pid
        veil = server.sip_port

        # 1. added delay at 100 calls/s (2,000 calls), baseline first.
        delay = {"rate": 100, "calls": 2000, "hold_ms": 100, "limit": 5000, "trace": True}
        base = load(workdir, uas_port, uas_port, inf, **delay)  # type: ignore[arg-type]
        report("baseline 100/s (SIPp -> SIPp)", base)
        via = load(workdir, veil, uas_port, inf, **delay)  # type: ignore[arg-type]
        report("via Veil 100/s", via)
        for q in (0.5, 0.99):
            b = percentile(base["delays"], q)  # type: ignore[arg-type]
            v = percentile(via["delays"], q)  # type: ignore[arg-type]
            print(f"  added by Veil at p{int(q * 100)}: {v - b:.2f} ms")

        # 2. setup rate.
        rate = {"rate": args.rate, "calls": args.calls, "hold_ms": 500, "limit": 20000}
        base = load(workdir, uas_port, uas_port, inf, **rate)  # type: ignore[arg-type]
        report(f"baseline {args.rate}/s", base)
        cpu0 = cpu_seconds(pid)
        via = load(workdir, veil, uas_port, inf, **rate)  # type: ignore[arg-type]
        report(f"via Veil {args.rate}/s", via)
        print(f"  Veil CPU: {cpu_seconds(pid) - cpu0:.1f} s for {via['successful']} calls")

        # 3. concurrency: every call held long enough for all to be up at once.
        idle = rss_kib(pid)
        hold = int(args.concurrent / min(args.rate, 500) * 1000) + 10000
        peak = [idle]
        uas = callee(workdir, uas_port, args.concurrent, hold / 1000 + 60)
        try:
            time.sleep(0.5)
            command = ["timeout", f"{hold / 1000 + 50:g}s", "sipp", f"127.0.0.1:{veil}"]
            command += ["-sf", str(SCENARIO), "-i", "127.0.0.1", "-ci", "127.0.0.1"]
            command += ["-cp", str(free_sip_port()), "-p", str(free_sip_port())]
            command += ["-inf", str(inf), "-r", str(min(args.rate, 500))]
            command += ["-m", str(args.concurrent), "-l", str(args.concurrent)]
            command += ["-d", str(hold), "-nostdin", "-max_socket", "20000"]
            command += ["-trace_stat", "-stf", str(workdir / "concurrent.csv"), "-fd", "1"]
            uac = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL)
            while uac.poll() is None:
                peak.append(rss_kib(pid))
                time.sleep(0.5)
        finally:
            uas.terminate()
            uas.wait(10)
        rows = list(csv.DictReader((workdir / "concurrent.csv").open(), delimiter=";"))
        most = max(int(r["CurrentCall"]) for r in rows)
        last = rows[-1]
        print(
            f"concurrent: {most} calls up at once (SIPp), {last['SuccessfulCall(C)']} ok, "
            f"{last['FailedCall(C)']} failed; Veil RSS idle {idle / 1024:.0f} MiB, "
            f"peak {max(peak) / 1024:.0f} MiB, "
            f"{(max(peak) - idle) / max(1, most):.1f} KiB per call"
        )
        print(f"(median of RSS samples while held: {statistics.median(peak) / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
