"""Run SIPp (3.6.1, Debian ``sip-tester``) from pytest: one process per call party.

A ``Sipp`` is one SIPp process playing one scenario of ``tests/calls/scenarios`` (see the
comment at the top of each file). It is a UAC when given a ``remote`` address, else a UAS
(the scenario starts with a recv). Its port is chosen when it is built, so Veil can be
pointed at ``callee.address`` before the callee starts::

    callee = Sipp("callee_answers", workdir=tmp_path, keys={"callee": b_number})
    ...configure Veil's outbound trunk as callee.address...
    with callee:  # starts it, waits until it listens; stops it (by PID) at the end
        caller = run("caller_hangs_up", workdir=tmp_path, remote=veil_sip_address,
                     keys={"caller": a_number, "virtual": virtual_number})
        b = callee.wait()
    caller.assert_ok(); b.assert_ok()
    assert a_number not in b.received_text()

Numbers reach a scenario as SIPp *keywords*: ``keys={"caller": "+14155550123"}`` becomes
``-key caller +14155550123`` and every ``[caller]`` in the messages, and in action values
such as ``assignstr``/``verifyauth``, is replaced by it; ``regexp`` attributes and response
status codes are NOT substituted. A scenario that uses a keyword not passed makes SIPp exit
at once ("Unsupported keyword"). (``-set`` works too, as ``variables``, but only for names
the scenario declares in ``<Global variables="..."/>``.)

Exit codes seen with SIPp 3.6.1: 0 every call succeeded; 1 a call failed (an unexpected
message, or a ``check_it`` regexp in a recv action); 97 a scenario stopped itself with
``stop_now`` (caller_expects_failure on a wrong status); 255 SIPp's own ``-timeout`` hit;
254 the port could not be bound; 124 ``timeout(1)`` killed it. A SIPp ended by ``stop()``
exits 0: ``SippResult.ok`` is False then (``killed``).

Every process runs under ``timeout(1)`` (no SIPp outlives a test run, even a killed one)
with ``-nostdin``, ``-i 127.0.0.1`` (else SIPp puts another interface's address in its
messages), ``-ci 127.0.0.1`` (else its control socket binds 0.0.0.0:8888) and
``-timeout``/``-timeout_error``; ``-trace_msg``, ``-trace_err`` and ``-trace_stat`` write
to files in ``workdir``, parsed into the ``SippResult``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal, TypedDict, Unpack

from tests.servers import free_sip_port

if TYPE_CHECKING:
    from veil.sip.message import Request, Response

SCENARIOS = Path(__file__).parent / "scenarios"
LOOPBACK = "127.0.0.1"

Transport = Literal["udp", "tcp"]
Direction = Literal["sent", "received"]

# One socket for all calls: what a trunk and Veil use (SIPp's "u1"/"t1").
_TRANSPORT_FLAG: dict[str, str] = {"udp": "u1", "tcp": "t1"}

# RFC 3261 7.3.3 compact forms that a peer may send instead of the long names.
_COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    return found


def scenario_path(scenario: str | Path) -> Path:
    """``"callee_answers"`` -> ``tests/calls/scenarios/callee_answers.xml``; paths pass through."""
    if isinstance(scenario, Path):
        return scenario
    name = scenario if scenario.endswith(".xml") else scenario + ".xml"
    path = SCENARIOS / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


# --- message log ---------------------------------------------------------------------


def _canonical(name: str) -> str:
    lower = name.strip().lower()
    return _COMPACT.get(lower, lower)


def parse_headers(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(start line, [(header name, value), ...]) of a SIP message, in order.

    Folded lines are joined and compact names expanded (to lower case, e.g. ``f`` ->
    ``from``); other names keep their case. The body, if any, is ignored.
    """
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)
    start, headers = lines[0], list[tuple[str, str]]()
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.strip()
            headers.append((_COMPACT.get(name.lower(), name), value.strip()))
    return start, headers


@dataclass(frozen=True)
class LoggedMessage:
    """One SIP message as SIPp sent or received it (from ``-trace_msg``)."""

    direction: Direction
    transport: str  # "UDP" / "TCP", as SIPp logs it
    time: datetime  # local wall-clock time SIPp logged it
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def start_line(self) -> str:
        return parse_headers(self.text)[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return parse_headers(self.text)[1]

    @property
    def body(self) -> str:
        parts = re.split(r"\r?\n\r?\n", self.text, maxsplit=1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def method(self) -> str | None:
        """The request method, or None for a response."""
        first = self.start_line.split(" ", 1)[0]
        return None if first.startswith("SIP/") else first

    @property
    def status(self) -> int | None:
        """The response status code, or None for a request."""
        parts = self.start_line.split(" ", 2)
        if parts[0].startswith("SIP/") and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def request_uri(self) -> str | None:
        parts = self.start_line.split(" ")
        return parts[1] if self.method is not None and len(parts) > 1 else None

    @property
    def cseq_method(self) -> str | None:
        cseq = self.header("CSeq")
        return cseq.split()[-1].upper() if cseq else None

    def header_values(self, name: str) -> list[str]:
        """Every value of the header ``name`` (any case, compact forms too), in order."""
        wanted = _canonical(name)
        return [value for key, value in self.headers if _canonical(key) == wanted]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def parsed(self) -> Request | Response:
        """The message parsed by Veil's own parser (``veil.sip.message.parse_message``)."""
        from veil.sip.message import parse_message

        return parse_message(self.raw)

    def matches(self, what: str | int | None, cseq: str | None = None) -> bool:
        """``what``: a method ("INVITE") or a status (180); ``cseq``: the CSeq method."""
        if isinstance(what, int):
            if self.status != what:
                return False
        elif what is not None and (self.method or "").upper() != what.upper():
            return False
        return cseq is None or self.cseq_method == cseq.upper()


_ENTRY = re.compile(
    rb"^-{10,} (?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    rb"(?P<transport>\w+) message (?P<direction>sent|received) "
    rb"(?:\((?P<sent>\d+) bytes\)|\[(?P<received>\d+)\] bytes ?):\n\n",
    re.MULTILINE,
)


def parse_message_log(data: bytes) -> list[LoggedMessage]:
    """SIPp's ``-trace_msg`` file -> its messages in order.

    Each entry is a dashed line with a timestamp, then ``UDP message sent (N bytes):`` or
    ``UDP message received [N] bytes :``, a blank line and the N raw bytes of the message.
    """
    entries = list(_ENTRY.finditer(data))
    messages = []
    for index, entry in enumerate(entries):
        size = int(entry["sent"] or entry["received"])
        end = entries[index + 1].start() if index + 1 < len(entries) else len(data)
        # The count is exact; min() only guards against a log cut short by a kill.
        raw = data[entry.end() : min(entry.end() + size, end)]
        direction: Direction = "sent" if entry["direction"] == b"sent" else "received"
        messages.append(
            LoggedMessage(
                direction=direction,
                transport=entry["transport"].decode(),
                time=datetime.strptime(entry["time"].decode(), "%Y-%m-%d %H:%M:%S.%f"),
                raw=raw,
            )
        )
    return messages


def parse_stats(text: str) -> dict[str, str]:
    """The last row of a ``-trace_stat`` CSV (``;``-separated) keyed by its header row."""
    rows = [line for line in text.splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return {k: v for k, v in zip(rows[0].split(";"), rows[-1].split(";"), strict=False) if k}


# --- results ---------------------------------------------------------------------------


@dataclass
class SippResult:
    """What one SIPp process did: exit code, every message and its logs."""

    scenario: str
    command: list[str] = field(repr=False)
    local_port: int
    returncode: int
    killed: bool  # stop() or a wait() timeout ended it (SIPp then exits 0 all the same)
    messages: list[LoggedMessage] = field(repr=False)
    message_log: str = field(repr=False)
    error_log: str = field(repr=False)
    output: str = field(repr=False)  # SIPp's stdout and stderr (its final screens)
    stats: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """Exit code 0: every call of the scenario succeeded (and no check_it failed)."""
        return self.returncode == 0 and not self.killed

    def received_messages(
        self, what: str | int | None = None, *, cseq: str | None = None
    ) -> list[LoggedMessage]:
        return [m for m in self.messages if m.direction == "received" and m.matches(what, cseq)]

    def sent_messages(
        self, what: str | int | None = None, *, cseq: str | None = None
    ) -> list[LoggedMessage]:
        return [m for m in self.messages if m.direction == "sent" and m.matches(what, cseq)]

    def received(self, what: str | int | None = None, *, cseq: str | None = None) -> list[str]:
        """The raw text of each message this party received (retransmissions included)."""
        return [m.text for m in self.received_messages(what, cseq=cseq)]

    def sent(self, what: str | int | None = None, *, cseq: str | None = None) -> list[str]:
        return [m.text for m in self.sent_messages(what, cseq=cseq)]

    def received_text(self) -> str:
        """Everything this party received, concatenated: for "X appears nowhere" checks."""
        return "".join(self.received())

    def describe(self) -> str:
        flow = "\n".join(
            f"  {'->' if m.direction == 'sent' else '<-'} {m.start_line}" for m in self.messages
        )
        return (
            f"sipp {self.scenario}: exit {self.returncode}"
            f"{' (killed by the harness)' if self.killed else ''}\n"
            f"command: {' '.join(self.command)}\n"
            f"flow:\n{flow or '  (no messages)'}\n"
            f"error log:\n{self.error_log.strip() or '  (empty)'}\n"
            f"output tail:\n{self.output[-1000:]}"
        )

    def assert_ok(self) -> SippResult:
        assert self.ok, self.describe()
        return self


# --- processes -------------------------------------------------------------------------


def _listening(port: int, transport: Transport) -> bool:
    """Whether something is bound to 127.0.0.1:port, read from /proc/net (no probing, which
    could steal the port or feed SIPp a stray connection)."""
    table = Path("/proc/net/udp" if transport == "udp" else "/proc/net/tcp")
    wanted = f"0100007F:{port:04X}"
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:  # no /proc: give SIPp the time it usually needs
        time.sleep(0.3)
        return True
    for line in lines:
        fields = line.split()
        # TCP: state 0A is LISTEN; a UDP socket is "listening" as soon as it is bound.
        if len(fields) > 3 and fields[1] == wanted and (transport == "udp" or fields[3] == "0A"):
            return True
    return False


class Sipp:
    """One SIPp process. UAC if ``remote`` is given, else UAS (the scenario starts with recv).

    Arguments map to SIPp options: ``local_port`` -> ``-p`` (default: a free port),
    ``remote`` -> the target ``host:port``, ``transport`` -> ``-t u1``/``-t t1``,
    ``calls`` -> ``-m``, ``keys`` -> ``-key name value`` (``[name]`` in the scenario),
    ``variables`` -> ``-set name value`` (``[$name]``; the scenario must declare it in
    ``<Global variables="..."/>``), ``pause_ms`` -> ``-d`` (the length of every bare
    ``<pause/>``), ``auth`` -> ``-au``/``-ap`` (used by ``[authentication]``),
    ``timeout`` -> ``-timeout Ns -timeout_error`` (SIPp gives up and exits non-zero);
    ``hard_timeout`` (default ``timeout + 5``) is when ``timeout(1)`` and the harness kill it.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        workdir: Path,
        remote: tuple[str, int] | None = None,
        local_port: int | None = None,
        transport: Transport = "udp",
        calls: int = 1,
        keys: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        pause_ms: int = 200,
        auth: tuple[str, str] | None = None,
        timeout: float = 15.0,
        hard_timeout: float | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.scenario = scenario_path(scenario)
        self.workdir = workdir
        self.remote = remote
        self.local_port = local_port if local_port is not None else free_sip_port()
        self.transport: Transport = transport
        self.timeout = timeout
        self.hard_timeout = hard_timeout if hard_timeout is not None else timeout + 5
        stem = f"{self.scenario.stem}-{self.local_port}"
        self.message_file = workdir / f"{stem}.messages.log"
        self.error_file = workdir / f"{stem}.errors.log"
        self.stat_file = workdir / f"{stem}.stats.csv"
        self.output_file = workdir / f"{stem}.out"

        sipp = [sipp_binary()]
        if remote is not None:
            sipp.append(f"{remote[0]}:{remote[1]}")
        sipp += ["-sf", str(self.scenario), "-i", LOOPBACK, "-ci", LOOPBACK]
        sipp += ["-p", str(self.local_port), "-t", _TRANSPORT_FLAG[transport]]
        sipp += ["-m", str(calls), "-d", str(pause_ms), "-nostdin"]
        sipp += ["-timeout", f"{timeout:g}s", "-timeout_error"]
        sipp += ["-trace_msg", "-message_file", str(self.message_file)]
        sipp += ["-trace_err", "-error_file", str(self.error_file)]
        sipp += ["-trace_stat", "-stf", str(self.stat_file)]
        for name, value in (keys or {}).items():
            sipp += ["-key", name, value]
        for name, value in (variables or {}).items():
            sipp += ["-set", name, value]
        if auth is not None:
            sipp += ["-au", auth[0], "-ap", auth[1]]
        sipp += list(extra_args)
        # timeout(1) ends SIPp even if pytest itself dies; -k: SIGKILL 2 s after the TERM.
        self.command = ["timeout", "-k", "2", f"{self.hard_timeout:g}s", *sipp]
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._killed = False
        self._result: SippResult | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where this party listens: give it to Veil (or to the other SIPp) as a target."""
        return (LOOPBACK, self.local_port)

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, ready_timeout: float = 5.0) -> Sipp:
        """Start in the background; a UAS is waited for until its port is bound."""
        assert self.process is None, "already started"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._output = self.output_file.open("wb")
        # Own session: the PID is also the process group of timeout(1) and SIPp.
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.remote is None:
            self._wait_listening(ready_timeout)
        return self

    def _wait_listening(self, ready_timeout: float) -> None:
        deadline = time.monotonic() + ready_timeout
        while not _listening(self.local_port, self.transport):
            if not self.running or time.monotonic() > deadline:
                result = self.stop()
                raise RuntimeError(f"SIPp did not start listening:\n{result.describe()}")
            time.sleep(0.02)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish (at most ``timeout`` s, default the hard timeout);
        kill it if it does not, and return what it did."""
        assert self.process is not None, "not started"
        if self._result is not None:
            return self._result
        try:
            self.process.wait(self.hard_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        return self._finish()

    def stop(self) -> SippResult:
        """End SIPp by its PID if it still runs (TERM, then KILL) and return what it did."""
        if self.process is None:
            raise RuntimeError("not started")
        if self._result is None and self.running:
            self._kill()
        return self._finish()

    def _kill(self) -> None:
        assert self.process is not None
        self._killed = True
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)  # timeout(1) passes it on to SIPp
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the group we created
            self.process.wait(3)

    def _finish(self) -> SippResult:
        assert self.process is not None
        if self._result is not None:
            return self._result
        returncode = self.process.wait()
        if self._output is not None:
            self._output.close()
        message_bytes = _read_bytes(self.message_file)
        self._result = SippResult(
            scenario=self.scenario.stem,
            command=self.command,
            local_port=self.local_port,
            returncode=returncode,
            killed=self._killed,
            messages=parse_message_log(message_bytes),
            message_log=message_bytes.decode("utf-8", errors="replace"),
            error_log=_read_bytes(self.error_file).decode("utf-8", errors="replace"),
            output=_read_bytes(self.output_file).decode("utf-8", errors="replace"),
            stats=parse_stats(_read_bytes(self.stat_file).decode("utf-8", errors="replace")),
        )
        return self._result

    def __enter__(self) -> Sipp:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.stop()


def _read_bytes(path: Path) -> bytes:
    # SIPp creates the error file only when there is an error to log.
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


class SippOptions(TypedDict, total=False):
    """The keyword arguments of ``Sipp`` (for ``run``)."""

    remote: tuple[str, int] | None
    local_port: int | None
    transport: Transport
    calls: int
    keys: Mapping[str, str] | None
    variables: Mapping[str, str] | None
    pause_ms: int
    auth: tuple[str, str] | None
    timeout: float
    hard_timeout: float | None
    extra_args: Sequence[str]


def run(scenario: str | Path, *, workdir: Path, **options: Unpack[SippOptions]) -> SippResult:
    """Run a scenario in the foreground (typically a UAC) to its end and return the result."""
    with Sipp(scenario, workdir=workdir, **options) as sipp:
        return sipp.wait()


# --- digest authentication --------------------------------------------------------------


def _auth_params(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {
        match["name"].lower(): match["quoted"] if match["quoted"] is not None else match["token"]
        for match in re.finditer(
            r'(?P<name>[\w-]+)\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[^\s,]+))', rest
        )
    }


def digest_ok(message: LoggedMessage, username: str, password: str) -> bool:
    """Whether a request's Proxy-Authorization (or Authorization) is a correct RFC 2617
    MD5 digest for ``username``/``password``: the check SIPp's verifyauth cannot make on
    Proxy-Authorization."""
    value = message.header("Proxy-Authorization") or message.header("Authorization")
    params = _auth_params(value or "")
    if message.method is None or params.get("username") != username:
        return False
    if params.get("algorithm", "MD5").upper() != "MD5":
        return False

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{username}:{params.get('realm', '')}:{password}")
    ha2 = md5(f"{message.method}:{params.get('uri', '')}")
    nonce = params.get("nonce", "")
    if "qop" in params:
        expected = md5(
            f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:{params['qop']}:{ha2}"
        )
    else:
        expected = md5(f"{ha1}:{nonce}:{ha2}")
    return params.get("response", "").lower() == expected
