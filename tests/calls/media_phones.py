"""Helpers for the media-feature call tests: prompts served over real HTTP, a caller's
SIPp scenario that types keys with SIPp's bundled RFC 2833 pcaps, and an ear (an RTP
socket of the test) that tells which prompt tone it heard, in order."""

from __future__ import annotations

import array
import http.server
import itertools
import math
import random
import socket
import struct
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from veil.media.recording import decode_alaw, decode_ulaw

PCAPS = Path("/usr/share/sip-tester")
KEY_PCAPS = {**{d: f"dtmf_2833_{d}.pcap" for d in "0123456789"}, "*": "dtmf_2833_star.pcap"}
KEY_PCAPS["#"] = "dtmf_2833_pound.pcap"

# Each prompt is a pure tone, so what a party heard can be told apart by frequency.
TONES = {"pin": 440, "wrong": 1200, "sorry": 700, "hello": 600, "welcome": 900}
TONE_SECONDS = 1.0


def tone_wav(path: Path, frequency: int, seconds: float = TONE_SECONDS) -> None:
    rate = 8000
    step = 2 * math.pi * frequency / rate
    count = int(rate * seconds)
    samples = array.array("h", (int(12000 * math.sin(step * n)) for n in range(count)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


@dataclass
class PromptServer:
    url: str
    hits: dict[str, int] = field(default_factory=dict)

    def prompt(self, name: str) -> str:
        return f"{self.url}/{name}.wav"


@contextmanager
def prompt_server(directory: Path) -> Iterator[PromptServer]:
    """A real HTTP server on 127.0.0.1 serving one tone WAV per name in ``TONES``."""
    for name, frequency in TONES.items():
        tone_wav(directory / f"{name}.wav", frequency)
    state = PromptServer("")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Packet(NamedTuple):
    time: float  # arrival, wall clock (to compare with SIPp's message log)
    source: tuple[str, int]
    payload_type: int
    data: bytes


@dataclass
class Tone:
    name: str
    start: float  # first and last packet's arrival
    end: float
    packets: int


# Ears take ports between the test rtpengines' ranges (up to 30999, tests/servers.py) and
# the kernel's ephemeral ports: an ephemeral one could be a plane's trunk port, which is
# free between tests (SIPp binds it per test) and would then be taken from the trunk.
EAR_PORTS = range(31000, 32768)


def _bind_below_ephemeral() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in random.sample(EAR_PORTS, 50):
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return sock
    sock.close()
    raise RuntimeError("no free port for an Ear")


class Ear:
    """A UDP socket standing for a party's audio port: it keeps every RTP packet."""

    def __init__(self) -> None:
        self.sock = _bind_below_ephemeral()
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.packets: list[Packet] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, (host, port) = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            if len(data) >= 12 and data[0] >> 6 == 2:  # RTP version 2
                self.packets.append(Packet(time.time(), (host, port), data[1] & 0x7F, data))

    def __enter__(self) -> Ear:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def audio(self) -> list[Packet]:
        """G.711 packets (A-law or u-law)."""
        return [p for p in self.packets if p.payload_type in (0, 8)]

    def keys(self) -> int:
        """RFC 4733 event packets received (payload type 101 in these scenarios)."""
        return sum(1 for p in self.packets if p.payload_type == 101)

    def heard(self, min_packets: int = 10) -> list[Tone]:
        """The prompt tones heard, in order: each run of at least ``min_packets``
        packets of one tone."""
        runs: list[Tone] = []
        last: str | None = None
        for packet in self.packets:
            name = _tone_of(packet.payload_type, packet.data)
            if name is not None and name == last:
                runs[-1].end = packet.time
                runs[-1].packets += 1
            elif name is not None:
                runs.append(Tone(name, packet.time, packet.time, 1))
            last = name
        return [run for run in runs if run.packets >= min_packets]


def _tone_of(payload_type: int, packet: bytes) -> str | None:
    if payload_type not in (0, 8):
        return None
    header = 12 + 4 * (packet[0] & 0x0F)
    audio = packet[header:]
    pcm = decode_alaw(audio) if payload_type == 8 else decode_ulaw(audio)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    if not samples or max(abs(s) for s in samples) < 2000:
        return None  # silence or comfort noise
    crossings = sum(1 for x, y in itertools.pairwise(samples) if (x < 0) != (y < 0))
    frequency = crossings * 8000 / (2 * len(samples))
    name, nearest = min(TONES.items(), key=lambda item: abs(item[1] - frequency))
    return name if abs(nearest - frequency) < 80 else None


def keys_xml(keys: str, gap_ms: int = 400) -> str:
    """SIPp steps that press ``keys`` (each one of SIPp's bundled RFC 2833 pcaps)."""
    steps = []
    for key in keys:
        steps.append(
            f'<nop><action><exec play_pcap_audio="{PCAPS / KEY_PCAPS[key]}"/></action></nop>'
        )
        steps.append(f'<pause milliseconds="{gap_ms}"/>')
    return "\n  ".join(steps)


_INVITE = """<send retrans="500">
    <![CDATA[

      INVITE sip:[virtual]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[caller]@[local_ip]>;tag=[pid]a[call_number]
      To: <sip:[virtual]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [rtp_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      From: <sip:[caller]@[local_ip]>;tag=[pid]a[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>"""

_HANG_UP = """<send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      From: <sip:[caller]@[local_ip]>;tag=[pid]a[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>"""

_HUNG_UP = """<recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""


def caller_scenario(
    path: Path, steps: list[str], *, talk_ms: int = 0, veil_hangs_up: bool = False
) -> Path:
    """A caller (the inbound trunk) whose audio port is ``[rtp_port]`` (an ``Ear``):
    it is answered, runs ``steps`` (pauses and key presses), then either talks
    (SIPp's A-law recording) for ``talk_ms`` and hangs up, or waits for Veil's BYE."""
    body = [_INVITE, *steps]
    if veil_hangs_up:
        body.append(_HUNG_UP)
    else:
        if talk_ms:
            body.append(
                f'<nop><action><exec play_pcap_audio="{PCAPS / "g711a.pcap"}"/></action></nop>'
            )
            body.append(f'<pause milliseconds="{talk_ms}"/>')
        body.append(_HANG_UP)
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        f'<scenario name="{path.stem}">\n  ' + "\n  ".join(body) + "\n</scenario>\n"
    )
    path.write_text(text)
    return path


def pause(ms: int) -> str:
    return f'<pause milliseconds="{ms}"/>'
