"""Call recordings: rtpengine's pcap files (``recording-method = pcap``) to WAV or MP3.

rtpengine writes ``<spool>/pcaps/<callid>-<rand>.pcap`` (linktype 101, raw IP) holding the
RTP it *received* from the parties (A→rtpengine and B→rtpengine); prompts injected with
``play media`` are not in it. This module reads such a file with the standard library
only:

- ``read_pcap``: classic pcap (either byte order, µs or ns timestamps), linktypes raw IP
  (101), Ethernet (1) and Linux SLL (113); IPv4 + UDP only, everything else is skipped.
  A truncated last record (a pcap rtpengine still has open) is ignored.
- ``parse_rtp``: RFC 3550 header (version 2, CSRCs, extension, padding).
- ``decode_streams``: one ``Stream`` per source address + SSRC. G.711 μ-law (PT 0) and
  A-law (PT 8) become 16-bit PCM through lookup tables (``audioop`` is gone in 3.13);
  telephone-event, comfort noise and any other payload type are skipped. Packets are put
  in sequence-number order (16-bit wrap-around), duplicates dropped, and RTP timestamp
  gaps filled with silence (one gap is capped at ``max_gap`` seconds).
- ``to_wav`` (8 kHz, 16-bit; mono mix or stereo), ``to_mp3`` (ffmpeg or lame) and
  ``convert`` (pcap to file in one call).
"""

from __future__ import annotations

import array
import functools
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "ALAW_TABLE",
    "SAMPLE_RATE",
    "ULAW_TABLE",
    "Packet",
    "RecordingError",
    "RtpPacket",
    "Stream",
    "convert",
    "decode_alaw",
    "decode_streams",
    "decode_ulaw",
    "parse_rtp",
    "read_pcap",
    "to_mp3",
    "to_wav",
]

SAMPLE_RATE = 8000
MAX_GAP = 5.0  # seconds of silence one timestamp gap may add at most

Address = tuple[str, int]


class RecordingError(Exception):
    """A recording that cannot be read or converted (the message says why)."""


# --- G.711 ---------------------------------------------------------------------------------


def _ulaw_to_linear(code: int) -> int:
    byte = ~code & 0xFF
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def _alaw_to_linear(code: int) -> int:
    byte = code ^ 0x55
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (mantissa << 4) + 8  # segment 0 is linear
    if exponent:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if byte & 0x80 else -magnitude


ULAW_TABLE: tuple[int, ...] = tuple(_ulaw_to_linear(code) for code in range(256))
ALAW_TABLE: tuple[int, ...] = tuple(_alaw_to_linear(code) for code in range(256))


def _byte_tables(table: Sequence[int]) -> tuple[bytes, bytes]:
    """Translation tables for the low and the high byte of each little-endian sample."""
    words = [value & 0xFFFF for value in table]
    return bytes(w & 0xFF for w in words), bytes(w >> 8 for w in words)


_ULAW_BYTES = _byte_tables(ULAW_TABLE)
_ALAW_BYTES = _byte_tables(ALAW_TABLE)


def _decode(payload: bytes, tables: tuple[bytes, bytes]) -> bytes:
    out = bytearray(2 * len(payload))
    out[0::2] = payload.translate(tables[0])
    out[1::2] = payload.translate(tables[1])
    return bytes(out)


def decode_ulaw(payload: bytes) -> bytes:
    """G.711 μ-law to 16-bit little-endian PCM."""
    return _decode(payload, _ULAW_BYTES)


def decode_alaw(payload: bytes) -> bytes:
    """G.711 A-law to 16-bit little-endian PCM."""
    return _decode(payload, _ALAW_BYTES)


_DECODERS = {0: decode_ulaw, 8: decode_alaw}  # static payload types, 8 kHz, 1 byte/sample


# --- pcap ----------------------------------------------------------------------------------

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP datagram from a pcap."""

    time: float  # seconds since the epoch, as captured
    src: Address
    dst: Address
    payload: bytes


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    """The IPv4 packet inside a link-layer frame, or None for anything else."""
    if linktype == LINKTYPE_RAW:
        return frame
    if linktype == LINKTYPE_ETHERNET:
        offset, ethertype_at = 14, 12
        if len(frame) >= 18 and frame[12:14] in (b"\x81\x00", b"\x88\xa8"):  # one VLAN tag
            offset, ethertype_at = 18, 16
    elif linktype == LINKTYPE_LINUX_SLL:
        offset, ethertype_at = 16, 14
    else:  # pragma: no cover - rejected in read_pcap
        return None
    if len(frame) < offset or frame[ethertype_at : ethertype_at + 2] != b"\x08\x00":
        return None
    return frame[offset:]


def _udp(ip: bytes, time: float) -> Packet | None:
    """The UDP datagram in an IPv4 packet; None for other protocols, IPv6, fragments."""
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header_length = (ip[0] & 0x0F) * 4
    total_length = int.from_bytes(ip[2:4], "big")
    flags_fragment = int.from_bytes(ip[6:8], "big")
    if ip[9] != 17 or header_length < 20 or flags_fragment & 0x3FFF:  # not UDP, or a fragment
        return None
    ip = ip[: min(len(ip), total_length)] if total_length >= header_length else ip
    udp = ip[header_length:]
    if len(udp) < 8:
        return None
    src_port, dst_port, udp_length = struct.unpack_from("!HHH", udp)
    end = min(len(udp), udp_length) if udp_length >= 8 else len(udp)
    src = (_dotted(ip[12:16]), src_port)
    dst = (_dotted(ip[16:20]), dst_port)
    return Packet(time, src, dst, bytes(udp[8:end]))


@functools.lru_cache(maxsize=64)
def _dotted(address: bytes) -> str:
    """A recording has a handful of addresses and thousands of packets."""
    return ".".join(map(str, address))


def read_pcap(path: str | Path) -> list[Packet]:
    """The IPv4/UDP packets of a classic pcap file, in file order."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise RecordingError(f"{path}: too short for a pcap file ({len(data)} bytes)")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        raise RecordingError(f"{path}: pcapng is not supported, only classic pcap")
    if magic not in _PCAP_MAGICS:
        raise RecordingError(f"{path}: not a pcap file (magic {magic.hex()})")
    order, resolution = _PCAP_MAGICS[magic]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF  # upper bits: FCS
    if linktype not in (LINKTYPE_RAW, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
        raise RecordingError(f"{path}: unsupported pcap linktype {linktype}")
    record = struct.Struct(order + "IIII")
    packets: list[Packet] = []
    offset = 24
    while offset + record.size <= len(data):
        seconds, fraction, captured, _original = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            break  # cut short: rtpengine still writing, or a crash
        frame = data[offset : offset + captured]
        offset += captured
        ip = _ip_payload(linktype, frame)
        packet = _udp(ip, seconds + fraction * resolution) if ip is not None else None
        if packet is not None:
            packets.append(packet)
    return packets


# --- RTP -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False


def parse_rtp(data: bytes) -> RtpPacket | None:
    """An RFC 3550 RTP packet, or None if ``data`` is not one (RTCP, STUN, garbage)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP (PT 64-95 with the marker bit; RFC 5761 section 4)
        return None
    first, second, seq, timestamp, ssrc = struct.unpack_from("!BBHII", data)
    offset = 12 + 4 * (first & 0x0F)  # CSRCs
    if first & 0x10:  # header extension: profile (16 bits), length in 32-bit words
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if first & 0x20:  # padding: the last byte counts the padding bytes, itself included
        padding = data[-1]
        if padding == 0:
            return None
        end -= padding
    if end < offset:
        return None
    return RtpPacket(second & 0x7F, seq, timestamp, ssrc, bytes(data[offset:end]), second >= 0x80)


# --- streams -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """The audio one source (address + SSRC) sent, as 8 kHz 16-bit little-endian PCM."""

    src: Address
    ssrc: int
    start: float  # pcap time of the first sample
    pcm: bytes
    packets: int  # audio packets used (after dropping duplicates)
    payload_types: frozenset[int]

    @property
    def frames(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.frames / SAMPLE_RATE

    def samples(self) -> array.array[int]:
        values = array.array("h", self.pcm)
        if sys.byteorder == "big":
            values.byteswap()
        return values


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _stream(
    src: Address, ssrc: int, received: list[tuple[float, RtpPacket]], max_gap: float
) -> Stream | None:
    # Extended sequence numbers: each step is the signed 16-bit difference to the previous
    # packet *received*, so reordering across the wrap from 65535 to 0 sorts right.
    ordered: dict[int, tuple[float, RtpPacket]] = {}
    extended = received[0][1].seq
    previous = extended
    for time, rtp in received:
        extended += _signed(rtp.seq - previous, 16)
        previous = rtp.seq
        ordered.setdefault(extended, (time, rtp))  # duplicates: the first copy wins
    cap = round(max_gap * SAMPLE_RATE)
    chunks: list[bytes] = []
    position = 0  # samples so far
    next_timestamp: int | None = None
    start: float | None = None
    used = 0
    types: set[int] = set()
    for key in sorted(ordered):
        time, rtp = ordered[key]
        decoder = _DECODERS.get(rtp.payload_type)
        if decoder is None:  # telephone-event, comfort noise, video, anything unknown
            continue
        pcm = decoder(rtp.payload)
        if next_timestamp is not None:
            gap = _signed(rtp.timestamp - next_timestamp, 32)
            if gap > 0:
                silence = min(gap, cap)
                chunks.append(bytes(2 * silence))
                position += silence
            elif gap < 0 and -gap < len(rtp.payload):
                pcm = pcm[-2 * gap :]  # overlaps what we have: keep only the new part
            elif gap < 0:
                continue  # entirely overlapping (or a timestamp reset backwards): drop
        # The start estimate least delayed by jitter, from the first second of packets.
        if used < 50:
            estimate = time - position / SAMPLE_RATE
            start = estimate if start is None else min(start, estimate)
        chunks.append(pcm)
        position += len(pcm) // 2
        next_timestamp = (rtp.timestamp + len(rtp.payload)) & 0xFFFFFFFF
        used += 1
        types.add(rtp.payload_type)
    if start is None:
        return None
    return Stream(src, ssrc, start, b"".join(chunks), used, frozenset(types))


def decode_streams(packets: Iterable[Packet], *, max_gap: float = MAX_GAP) -> list[Stream]:
    """The G.711 streams in ``packets``, one per source address and SSRC, by start time.

    Sources without any G.711 packet (only DTMF, RTCP, ...) give no stream."""
    sources: dict[tuple[Address, int], list[tuple[float, RtpPacket]]] = {}
    for packet in packets:
        rtp = parse_rtp(packet.payload)
        if rtp is not None:
            sources.setdefault((packet.src, rtp.ssrc), []).append((packet.time, rtp))
    streams = [
        stream
        for (src, ssrc), received in sources.items()
        if (stream := _stream(src, ssrc, received, max_gap)) is not None
    ]
    return sorted(streams, key=lambda s: (s.start, s.src, s.ssrc))


# --- output --------------------------------------------------------------------------------


def _placed(stream: Stream, origin: float, frames: int) -> bytes:
    """``stream``'s PCM on a timeline of ``frames`` frames starting at ``origin``."""
    offset = round((stream.start - origin) * SAMPLE_RATE)
    tail = max(0, frames - offset - stream.frames)
    return (bytes(2 * offset) + stream.pcm + bytes(2 * tail))[: 2 * frames]


def _mix(streams: Sequence[Stream], origin: float, frames: int) -> array.array[int]:
    """The streams summed (clipped to 16 bits) on a timeline starting at ``origin``.
    The sum is sox's: a Python loop over the samples cost 11 ms of CPU per second of
    call, more than two cores for 200 calls at once."""
    parts = [_placed(stream, origin, frames) for stream in streams]
    if not parts:
        pcm = bytes(2 * frames)
    elif len(parts) == 1:
        pcm = parts[0]
    else:
        pcm = _sox_mix(parts)[: 2 * frames]
        pcm += bytes(2 * frames - len(pcm))
    values = array.array("h", pcm)
    if sys.byteorder == "big":
        values.byteswap()
    return values


_RAW = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed-integer", "-b", "16", "-c", "1", "-L"]


def _sox_mix(parts: Sequence[bytes], timeout: float = 120.0) -> bytes:
    """Little-endian 16-bit PCM tracks of equal length, summed with clipping."""
    sox = shutil.which("sox")
    if sox is None:
        raise RecordingError("mixing a recording needs sox on PATH")
    with tempfile.TemporaryDirectory(prefix="veil-mix-") as scratch:
        inputs: list[str] = []
        for index, part in enumerate(parts):
            path = Path(scratch) / f"{index}.raw"
            path.write_bytes(part)
            inputs += ["-v", "1", *_RAW, str(path)]  # full level: a sum, not an average
        out = Path(scratch) / "mix.raw"
        _run_tool([sox, "-V1", "-D", "-m", *inputs, *_RAW, str(out)], timeout)
        return out.read_bytes()


def _run_tool(command: list[str], timeout: float) -> None:
    """Run an audio tool (sox, lame, ffmpeg); RecordingError says why it failed."""
    name = Path(command[0]).name
    try:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RecordingError(f"{name} took more than {timeout}s") from exc
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()[-500:]
        raise RecordingError(f"{name} exited {result.returncode}: {detail}")


def to_wav(streams: Sequence[Stream], path: str | Path, *, stereo: bool) -> float:
    """Write 8 kHz 16-bit WAV; returns its duration in seconds.

    Streams are aligned on their start times. Mono is the mix of all streams. Stereo puts
    the first stream (the earliest) left and the second right; further streams are mixed
    into the channel of the stream with the same source address, or else the right one."""
    origin = min((stream.start for stream in streams), default=0.0)
    frames = max(
        (round((s.start - origin) * SAMPLE_RATE) + s.frames for s in streams),
        default=0,
    )
    if stereo:
        left = list(streams[:1])
        right = list(streams[1:2])
        for stream in streams[2:]:
            (left if stream.src == streams[0].src else right).append(stream)
        channels = [_mix(left, origin, frames), _mix(right, origin, frames)]
        interleaved = array.array("h", bytes(4 * frames))
        interleaved[0::2] = channels[0]
        interleaved[1::2] = channels[1]
    else:
        interleaved = _mix(streams, origin, frames)
    if sys.byteorder == "big":
        interleaved.byteswap()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2 if stereo else 1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(interleaved.tobytes())
    return frames / SAMPLE_RATE


def to_mp3(
    wav_path: str | Path, mp3_path: str | Path, *, bitrate: int = 32, timeout: float = 120.0
) -> None:
    """Encode a WAV file to MP3 (CBR ``bitrate`` kbit/s) with ffmpeg, or else lame."""
    if ffmpeg := shutil.which("ffmpeg"):
        command = [
            ffmpeg,
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *("-i", str(wav_path), "-codec:a", "libmp3lame", "-b:a", f"{bitrate}k"),
            str(mp3_path),
        ]
    elif lame := shutil.which("lame"):
        command = [lame, "--quiet", "-b", str(bitrate), str(wav_path), str(mp3_path)]
    else:
        raise RecordingError("MP3 needs ffmpeg or lame on PATH; neither is installed")
    _run_tool(command, timeout)


def convert(
    pcap_path: str | Path,
    out_path: str | Path,
    *,
    fmt: Literal["wav", "mp3"],
    stereo: bool = False,
    max_gap: float = MAX_GAP,
) -> float:
    """Convert an rtpengine pcap to WAV or MP3; returns the duration in seconds."""
    if fmt not in ("wav", "mp3"):
        raise ValueError(f"fmt must be 'wav' or 'mp3', not {fmt!r}")
    streams = decode_streams(read_pcap(pcap_path), max_gap=max_gap)
    if not streams:
        raise RecordingError(f"{pcap_path}: no G.711 audio (PCMU/PCMA) in the recording")
    if fmt == "wav":
        return to_wav(streams, out_path, stereo=stereo)
    out = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="veil-rec-", dir=out.parent) as scratch:
        wav_path = Path(scratch) / "audio.wav"
        duration = to_wav(streams, wav_path, stereo=stereo)
        to_mp3(wav_path, out)
    return duration
