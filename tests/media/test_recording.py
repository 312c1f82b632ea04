"""veil.media.recording: pcap → RTP streams → WAV/MP3, with unit tests on hand-built pcaps and
one end-to-end run on a real rtpengine recording (tests/media/conftest.py)."""

from __future__ import annotations

import asyncio
import math
import shutil
import socket
import struct
import subprocess
import uuid
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.media.conftest import Rtpengine
from tests.media.test_ng import g711_sdp, media_port, ng_client
from veil.media import recording
from veil.media.recording import (
    ALAW_TABLE,
    ULAW_TABLE,
    Packet,
    RecordingError,
    RtpPacket,
    convert,
    decode_alaw,
    decode_streams,
    decode_ulaw,
    parse_rtp,
    read_pcap,
    to_mp3,
    to_wav,
)

HOST = "127.0.0.1"

# --- helpers: G.711 straight from ITU-T G.711 tables 1a/2a, RTP and pcap builders ---------


def g711_alaw_reference(code: int) -> int:
    """Table 1a: even bits inverted; decoder output (in 1/4096 of full scale, 13 bits) for
    segment s and step m is 2m+1 in segment 0 and (2m+33)·2^(s-1) above; sign bit 1 is +."""
    bits = code ^ 0b01010101
    segment, step = (bits >> 4) & 7, bits & 15
    value = 2 * step + 1 if segment == 0 else (2 * step + 33) << (segment - 1)
    value *= 8  # 13-bit to 16-bit
    return value if bits & 0x80 else -value


def g711_ulaw_reference(code: int) -> int:
    """Table 2a: all bits inverted; decoder output (14 bits) is (2m+33)·2^s - 33; sign bit
    (as transmitted) 1 is +."""
    bits = ~code & 0x7F
    segment, step = bits >> 4, bits & 15
    value = ((2 * step + 33) << segment) - 33
    value *= 4  # 14-bit to 16-bit
    return value if code & 0x80 else -value


def ulaw_encode(sample: int) -> int:
    """Linear 16-bit → μ-law (the classic biased-segment encoder), for making test RTP."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def rtp(
    seq: int,
    ts: int,
    payload: bytes,
    *,
    pt: int = 0,
    ssrc: int = 0x1234,
    marker: bool = False,
    csrcs: Sequence[int] = (),
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    first = 0x80 | len(csrcs) | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    data = struct.pack("!BBHII", first, pt | (0x80 if marker else 0), seq, ts, ssrc)
    data += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension is not None:
        data += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    data += payload
    if padding:
        data += bytes(padding - 1) + bytes([padding])
    return data


def ipv4_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes, proto: int = 17) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0x4000,  # DF, not a fragment
            64,
            proto,
            0,
            socket.inet_aton(src[0]),
            socket.inet_aton(dst[0]),
        )
        + udp
    )


def frame(linktype: int, ip: bytes, ethertype: int = 0x0800) -> bytes:
    if linktype == 1:
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + ip
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, ethertype) + ip
    return ip


def pcap(
    records: Sequence[tuple[float, bytes]],
    *,
    linktype: int = 101,
    order: str = "<",
    nanos: bool = False,
) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    scale = 10**9 if nanos else 10**6
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for when, data in records:
        seconds = int(when)
        fraction = round((when - seconds) * scale)
        out += struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data
    return out


A = ("10.0.0.1", 4000)
B = ("10.0.0.2", 5000)
ENGINE = ("127.0.0.1", 40000)


def packets(*items: tuple[float, bytes], src: tuple[str, int] = A) -> list[Packet]:
    return [Packet(when, src, ENGINE, data) for when, data in items]


def tone(freq: float, frames: int, amplitude: int = 8000, start: int = 0) -> list[int]:
    return [
        round(amplitude * math.sin(2 * math.pi * freq * n / 8000))
        for n in range(start, start + frames)
    ]


def power(samples: Sequence[int], freq: float) -> float:
    """Goertzel: the signal's power at ``freq`` (8 kHz sampling)."""
    coeff = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dominant(samples: Sequence[int], candidates: Sequence[float]) -> float:
    return max(candidates, key=lambda f: power(samples, f))


def rms(samples: Sequence[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def read_wav(path: Path) -> tuple[int, int, list[list[int]]]:
    """(channels, rate, samples per channel)."""
    with wave.open(str(path), "rb") as wav:
        channels, rate, width = wav.getnchannels(), wav.getframerate(), wav.getsampwidth()
        assert width == 2
        data = wav.readframes(wav.getnframes())
    values = list(struct.unpack(f"<{len(data) // 2}h", data))
    return channels, rate, [values[c::channels] for c in range(channels)]


def samples(stream: recording.Stream) -> list[int]:
    return list(stream.samples())


# --- G.711 ---------------------------------------------------------------------------------


def test_ulaw_table_matches_g711() -> None:
    assert ULAW_TABLE[0xFF] == 0
    assert ULAW_TABLE[0x7F] == 0
    assert ULAW_TABLE[0x80] == 32124
    assert ULAW_TABLE[0x00] == -32124
    assert ULAW_TABLE[0xFE] == 8
    assert list(ULAW_TABLE) == [g711_ulaw_reference(code) for code in range(256)]


def test_alaw_table_matches_g711() -> None:
    assert ALAW_TABLE[0xD5] == 8
    assert ALAW_TABLE[0x55] == -8
    assert ALAW_TABLE[0xAA] == 32256
    assert ALAW_TABLE[0x2A] == -32256
    assert list(ALAW_TABLE) == [g711_alaw_reference(code) for code in range(256)]


def test_decode_payloads_to_little_endian_pcm() -> None:
    codes = bytes(range(256))
    assert decode_ulaw(codes) == struct.pack("<256h", *ULAW_TABLE)
    assert decode_alaw(codes) == struct.pack("<256h", *ALAW_TABLE)
    assert decode_ulaw(b"") == b""


def test_test_encoder_round_trips() -> None:
    """The μ-law encoder the tests make RTP with agrees with the decoder (within a step)."""
    for value in range(-32000, 32000, 37):
        decoded = ULAW_TABLE[ulaw_encode(value)]
        assert abs(decoded - value) <= max(8, abs(value) // 16), value


# --- RTP -----------------------------------------------------------------------------------


def test_parse_plain_rtp() -> None:
    assert parse_rtp(rtp(7, 160, b"\x01\x02", pt=8, ssrc=99, marker=True)) == RtpPacket(
        8, 7, 160, 99, b"\x01\x02", True
    )


def test_parse_rtp_with_csrcs_extension_and_padding() -> None:
    data = rtp(
        65535,
        0xFFFFFFF0,
        b"audio",
        csrcs=[1, 2, 3],
        extension=b"\x10\xaa\x00\x00" * 2,
        padding=4,
    )
    parsed = parse_rtp(data)
    assert parsed == RtpPacket(0, 65535, 0xFFFFFFF0, 0x1234, b"audio", False)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00" + bytes(9),  # 11 bytes
        b"\x40" + bytes(15),  # version 1
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12),  # STUN binding request
        struct.pack("!BBHI", 0x81, 200, 6, 0x1234) + bytes(20),  # RTCP sender report
        bytes([0x8F]) + rtp(1, 1, b"")[1:],  # 15 CSRCs announced, none there
        bytes([0xA0]) + rtp(1, 1, b"ab")[1:] + b"\x00",  # padding count 0
        bytes([0xA0]) + rtp(1, 1, b"ab")[1:] + b"\x20",  # padding longer than the packet
        bytes([0x90]) + rtp(1, 1, b"")[1:] + b"\xbe\xde",  # extension header cut short
        bytes([0x90]) + rtp(1, 1, b"")[1:] + b"\xbe\xde\x00\x05",  # extension longer
    ],
)
def test_not_rtp(data: bytes) -> None:
    assert parse_rtp(data) is None


# --- pcap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nanos", [False, True], ids=["us", "ns"])
@pytest.mark.parametrize("linktype", [101, 1, 113], ids=["raw", "ethernet", "sll"])
def test_read_pcap(tmp_path: Path, order: str, nanos: bool, linktype: int) -> None:
    first = rtp(1, 0, b"\xff" * 160)
    records = [
        (1700000000.25, frame(linktype, ipv4_udp(A, ENGINE, first))),
        (1700000000.5, frame(linktype, ipv4_udp(A, ENGINE, b"tcp", proto=6))),  # TCP
        (1700000000.5, frame(linktype, b"\x60" + bytes(47), ethertype=0x86DD)),  # IPv6
        (1700000000.75, frame(linktype, ipv4_udp(B, ENGINE, b"x"))),
    ]
    path = tmp_path / "call.pcap"
    path.write_bytes(pcap(records, linktype=linktype, order=order, nanos=nanos))
    assert read_pcap(path) == [
        Packet(1700000000.25, A, ENGINE, first),
        Packet(1700000000.75, B, ENGINE, b"x"),
    ]


def test_read_pcap_keeps_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "ns.pcap"
    data = ipv4_udp(A, ENGINE, b"x")
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)
    path.write_bytes(header + struct.pack("<IIII", 10, 123456789, len(data), len(data)) + data)
    (packet,) = read_pcap(path)
    assert packet.time == pytest.approx(10.123456789, abs=1e-9)


def test_read_pcap_ignores_a_record_cut_short(tmp_path: Path) -> None:
    """rtpengine's pcap of a live call can end mid-record."""
    data = pcap([(1.0, ipv4_udp(A, ENGINE, b"one")), (2.0, ipv4_udp(A, ENGINE, b"two"))])
    path = tmp_path / "short.pcap"
    path.write_bytes(data[:-5])
    assert [p.payload for p in read_pcap(path)] == [b"one"]
    path.write_bytes(data[:24])  # header only
    assert read_pcap(path) == []


def test_read_pcap_skips_fragments_and_honours_ip_and_udp_lengths(tmp_path: Path) -> None:
    good = ipv4_udp(A, ENGINE, b"payload")
    fragment = bytearray(ipv4_udp(A, ENGINE, b"frag"))
    fragment[6:8] = b"\x20\x00"  # more fragments
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap([(1.0, bytes(fragment)), (2.0, good + b"\x00" * 6)]))  # trailer
    assert [p.payload for p in read_pcap(path)] == [b"payload"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "pcapng is not supported"),
        (b"GIF89a" + bytes(40), "not a pcap file"),
        (b"\xd4\xc3\xb2\xa1", "too short"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127), "linktype 127"),
    ],
)
def test_read_pcap_rejects(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        read_pcap(path)


# --- streams -------------------------------------------------------------------------------


def frame_of(value: int, count: int = 160) -> bytes:
    return bytes([ulaw_encode(value)]) * count


def test_streams_sorted_by_sequence_across_the_wrap_with_duplicates_dropped() -> None:
    # Each packet carries its own constant level, so the order is visible in the output.
    levels = {65534: 1000, 65535: 2000, 0: 3000, 1: 4000}
    arrival = [65534, 0, 65535, 0, 1, 65535]  # reordered and duplicated
    times = [10.0, 10.045, 10.05, 10.06, 10.07, 10.08]
    stream_packets = packets(
        *(
            (when, rtp(seq, 160 * ((seq - 65534) & 0xFFFF), frame_of(levels[seq])))
            for when, seq in zip(times, arrival, strict=True)
        )
    )
    (stream,) = decode_streams(stream_packets)
    assert stream.packets == 4
    assert stream.frames == 4 * 160
    got = samples(stream)
    assert [got[i * 160] for i in range(4)] == [
        ULAW_TABLE[ulaw_encode(v)] for v in (1000, 2000, 3000, 4000)
    ]
    assert stream.start == pytest.approx(10.0)
    assert stream.duration == pytest.approx(0.08)


def test_timestamp_gap_becomes_silence_of_the_right_length() -> None:
    stream_packets = packets(
        (0.00, rtp(1, 1000, frame_of(5000))),
        (0.02, rtp(2, 1160, frame_of(5000))),
        # seq is consecutive but the sender skipped 40 ms (VAD, or DTMF in between)
        (0.10, rtp(3, 1160 + 160 + 320, frame_of(5000))),
    )
    (stream,) = decode_streams(stream_packets)
    got = samples(stream)
    assert len(got) == 160 * 3 + 320
    assert got[320 : 320 + 320] == [0] * 320
    assert all(v != 0 for v in got[:320] + got[640:])


def test_timestamp_gap_across_32_bit_wrap_and_cap() -> None:
    wrap = packets(
        (0.0, rtp(1, 0xFFFFFF60, frame_of(100))),  # ends exactly at 2^32
        (0.04, rtp(2, 160, frame_of(100))),  # one packet lost: 160 samples
    )
    (stream,) = decode_streams(wrap)
    assert stream.frames == 480
    huge = packets((0.0, rtp(1, 0, frame_of(100))), (100.0, rtp(2, 800_000, frame_of(100))))
    (stream,) = decode_streams(huge)
    assert stream.frames == 160 + 5 * 8000 + 160  # one gap adds 5 s at most
    (stream,) = decode_streams(huge, max_gap=1.0)
    assert stream.frames == 160 + 8000 + 160


def test_overlapping_timestamps_keep_only_new_samples() -> None:
    stream_packets = packets(
        (0.0, rtp(1, 0, frame_of(100))),
        (0.02, rtp(2, 80, frame_of(200))),  # half of it repeats what we have
        (0.04, rtp(3, 0, frame_of(300))),  # all of it
    )
    (stream,) = decode_streams(stream_packets)
    assert stream.frames == 240
    assert stream.packets == 2


def test_dtmf_comfort_noise_and_other_payload_types_are_skipped() -> None:
    stream_packets = packets(
        (0.00, rtp(1, 0, frame_of(1000))),
        (0.02, rtp(2, 160, b"\x05\x0a\x00\xa0", pt=101, marker=True)),  # telephone-event
        (0.04, rtp(3, 160, b"\x05\x8a\x01\x40", pt=101)),
        (0.06, rtp(4, 480, b"\x40", pt=13)),  # comfort noise
        (0.08, rtp(5, 480, b"\x00" * 20, pt=96)),  # some dynamic codec
        (0.10, rtp(6, 480, frame_of(1000))),
    )
    (stream,) = decode_streams(stream_packets)
    assert stream.packets == 2
    assert stream.frames == 160 + 320 + 160  # the DTMF/CN time is silence
    assert stream.payload_types == {0}
    # A source that only ever sent events gives no stream at all.
    assert decode_streams(packets((0.0, rtp(1, 0, b"\x05\x0a\x00\xa0", pt=101)))) == []


def test_one_stream_per_source_and_ssrc_ordered_by_start() -> None:
    alaw = bytes([0xD5]) * 160
    mixed = [
        *packets((5.0, rtp(1, 0, frame_of(1000), ssrc=7)), src=B),
        *packets((4.0, rtp(1, 0, alaw, pt=8, ssrc=7))),
        *packets((6.0, rtp(9, 0, frame_of(1000), ssrc=8))),  # A again, new SSRC
        *packets((4.1, b"not rtp at all")),
    ]
    streams = decode_streams(mixed)
    assert [(s.src, s.ssrc, s.start) for s in streams] == [(A, 7, 4.0), (B, 7, 5.0), (A, 8, 6.0)]
    assert samples(streams[0]) == [8] * 160  # A-law 0xD5
    assert streams[0].payload_types == {8}


def test_start_time_is_the_least_delayed_packet() -> None:
    """Jitter on the first packet does not shift the stream: packet 2 arrived on time."""
    stream_packets = packets(
        (1.015, rtp(1, 0, frame_of(1))),
        (1.020, rtp(2, 160, frame_of(1))),
        (1.041, rtp(3, 320, frame_of(1))),
    )
    (stream,) = decode_streams(stream_packets)
    assert stream.start == pytest.approx(1.0)


# --- WAV -----------------------------------------------------------------------------------


def make_stream(src: tuple[str, int], start: float, values: list[int]) -> recording.Stream:
    pcm = struct.pack(f"<{len(values)}h", *values)
    return recording.Stream(src, 1, start, pcm, 1, frozenset({0}))


def test_to_wav_mono_mixes_aligned_with_clipping(tmp_path: Path) -> None:
    first = make_stream(A, 100.0, [30000] * 800)  # 100 ms
    second = make_stream(B, 100.05, [10000] * 800 + [-30000] * 1)  # starts 50 ms later
    path = tmp_path / "mono.wav"
    assert to_wav([first, second], path, stereo=False) == pytest.approx((400 + 801) / 8000)
    channels, rate, (mono,) = read_wav(path)
    assert (channels, rate, len(mono)) == (1, 8000, 1201)
    assert mono[:400] == [30000] * 400
    assert mono[400:800] == [32767] * 400  # 40000 clipped
    assert mono[800:1200] == [10000] * 400
    assert mono[1200] == -30000


def test_to_wav_stereo_puts_streams_left_and_right(tmp_path: Path) -> None:
    first = make_stream(A, 100.0, [1000] * 160)
    second = make_stream(B, 100.01, [-2000] * 160)
    later_a = make_stream(A, 100.1, [300] * 80)  # A again (new SSRC): A's channel
    path = tmp_path / "stereo.wav"
    duration = to_wav([first, second, later_a], path, stereo=True)
    assert duration == pytest.approx(0.11)
    channels, rate, (left, right) = read_wav(path)
    assert (channels, rate) == (2, 8000)
    assert left == [1000] * 160 + [0] * 640 + [300] * 80
    assert right == [0] * 80 + [-2000] * 160 + [0] * 640


def test_to_wav_stereo_with_one_stream_has_a_silent_right(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    to_wav([make_stream(A, 1.0, [5] * 10)], path, stereo=True)
    _, _, (left, right) = read_wav(path)
    assert (left, right) == ([5] * 10, [0] * 10)


def test_convert_without_audio_raises(tmp_path: Path) -> None:
    path = tmp_path / "dtmf-only.pcap"
    path.write_bytes(pcap([(1.0, ipv4_udp(A, ENGINE, rtp(1, 0, b"\x05\x0a\x00\xa0", pt=101)))]))
    with pytest.raises(RecordingError, match=r"no G\.711 audio"):
        convert(path, tmp_path / "out.wav", fmt="wav")


def test_convert_wav_from_a_built_pcap(tmp_path: Path) -> None:
    records = [
        (50 + i * 0.02, frame(1, ipv4_udp(A, ENGINE, rtp(i, i * 160, frame_of(3000)))))
        for i in range(10)
    ]
    path = tmp_path / "call.pcap"
    path.write_bytes(pcap(records, linktype=1, order=">", nanos=True))
    assert convert(path, tmp_path / "out.wav", fmt="wav") == pytest.approx(0.2)
    assert read_wav(tmp_path / "out.wav")[2][0][0] == ULAW_TABLE[ulaw_encode(3000)]


def test_to_mp3_without_an_encoder_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("veil.media.recording.shutil.which", lambda name: None)
    with pytest.raises(RecordingError, match="ffmpeg or lame"):
        to_mp3(tmp_path / "in.wav", tmp_path / "out.mp3")


def test_to_mp3_reports_an_encoder_failure(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="exited"):
        to_mp3(tmp_path / "missing.wav", tmp_path / "out.mp3")


# --- end to end with a real rtpengine recording -------------------------------------------

PACKET_MS = 20
PACKETS = 100  # 2 s each way
A_FREQ, B_FREQ = 440.0, 1000.0
CANDIDATES = [300.0, A_FREQ, 700.0, B_FREQ, 1400.0, 2000.0]


class Sender:
    """One party: a UDP socket sending a PCMU tone as 20 ms RTP packets."""

    def __init__(self, freq: float, first_seq: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.freq = freq
        self.seq = first_seq
        self.ts = 0x7FFFFF00
        self.ssrc = uuid.uuid4().int & 0xFFFFFFFF
        self.sample = 0
        self.to: tuple[str, int] = (HOST, 0)

    def send_audio(self) -> None:
        values = tone(self.freq, 160, start=self.sample)
        payload = bytes(ulaw_encode(v) for v in values)
        self.sock.sendto(rtp(self.seq, self.ts, payload, ssrc=self.ssrc), self.to)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        self.sample += 160

    def send_dtmf(self) -> None:
        """An RFC 4733 event after the tone (timestamp of the event's start)."""
        for duration, end in ((160, False), (320, True), (320, True)):
            payload = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, duration)
            self.sock.sendto(rtp(self.seq, self.ts, payload, pt=101, ssrc=self.ssrc), self.to)
            self.seq = (self.seq + 1) & 0xFFFF

    def drain(self) -> int:
        count = 0
        while True:
            try:
                self.sock.recv(4096)
            except BlockingIOError:
                return count
            count += 1


def test_real_rtpengine_recording_to_wav_and_mp3(rtpengine: Rtpengine, tmp_path: Path) -> None:
    call_id = f"test-rec-{uuid.uuid4().hex}"
    a = Sender(A_FREQ, first_seq=65500)  # crosses the 16-bit sequence wrap
    b = Sender(B_FREQ, first_seq=1)
    received = [0, 0]

    async def go() -> None:
        async with ng_client(rtpengine) as ng:
            to_b = await ng.offer(call_id, "A", g711_sdp(HOST, a.port, 1), record=True)
            to_a = await ng.answer(call_id, "A", "B", g711_sdp(HOST, b.port, 2, "0 101"))
            a.to, b.to = (HOST, media_port(to_a)), (HOST, media_port(to_b))
            loop = asyncio.get_running_loop()
            begin = loop.time()
            for n in range(PACKETS):
                a.send_audio()
                b.send_audio()
                await asyncio.sleep(max(0.0, begin + (n + 1) * PACKET_MS / 1000 - loop.time()))
                received[0] += a.drain()
                received[1] += b.drain()
            a.send_dtmf()
            await asyncio.sleep(0.1)
            received[0] += a.drain()
            received[1] += b.drain()
            await ng.delete(call_id)

    try:
        asyncio.run(go())
    finally:
        a.sock.close()
        b.sock.close()
    assert received[1] >= PACKETS * 0.9, received  # rtpengine relayed the media
    assert received[0] >= PACKETS * 0.9, received

    (pcap_path,) = (rtpengine.spool / "pcaps").glob(f"{call_id}-*.pcap")
    streams = decode_streams(read_pcap(pcap_path))
    assert [s.src for s in streams] in (
        [(HOST, a.port), (HOST, b.port)],
        [(HOST, b.port), (HOST, a.port)],
    )
    sent = PACKETS * PACKET_MS / 1000
    for stream in streams:
        assert stream.duration == pytest.approx(sent, abs=0.5)
        assert stream.payload_types == {0}

    # Mono: both tones, with the duration of what was sent.
    mono_path = tmp_path / "mono.wav"
    duration = convert(pcap_path, mono_path, fmt="wav")
    assert duration == pytest.approx(sent, abs=0.5)
    channels, rate, (mono,) = read_wav(mono_path)
    assert (channels, rate) == (1, 8000)
    assert len(mono) / 8000 == pytest.approx(duration)
    assert rms(mono) > 3000  # two 8000-amplitude tones: ≈ 8000
    noise = power(mono, 700.0)
    assert power(mono, A_FREQ) > 100 * noise
    assert power(mono, B_FREQ) > 100 * noise

    # Stereo: each party's tone on its own channel (the first to start is left).
    stereo_path = tmp_path / "stereo.wav"
    assert convert(pcap_path, stereo_path, fmt="wav", stereo=True) == pytest.approx(duration)
    channels, rate, (left, right) = read_wav(stereo_path)
    assert (channels, rate) == (2, 8000)
    expected = [A_FREQ, B_FREQ] if streams[0].src == (HOST, a.port) else [B_FREQ, A_FREQ]
    assert [dominant(left, CANDIDATES), dominant(right, CANDIDATES)] == expected
    assert rms(left) > 3000 and rms(right) > 3000

    # MP3: decode it back and check the length and the sound.
    mp3_path = tmp_path / "call.mp3"
    assert convert(pcap_path, mp3_path, fmt="mp3", stereo=True) == pytest.approx(duration)
    assert mp3_path.read_bytes()[:3] == b"ID3" or mp3_path.read_bytes()[0] == 0xFF
    assert not list(tmp_path.glob("veil-rec-*"))  # the scratch WAV is gone
    decoded = tmp_path / "decoded.wav"
    if shutil.which("ffmpeg"):
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(mp3_path), str(decoded)]
    else:
        command = ["lame", "--quiet", "--decode", str(mp3_path), str(decoded)]
    subprocess.run(command, check=True, timeout=60)
    channels, rate, decoded_channels = read_wav(decoded)
    assert channels == 2
    assert len(decoded_channels[0]) / rate == pytest.approx(duration, abs=0.2)
    assert rate == 8000  # MPEG-2.5 keeps the telephone rate
    assert [dominant(channel, CANDIDATES) for channel in decoded_channels] == expected
    assert all(rms(channel) > 2000 for channel in decoded_channels)


def test_to_mp3_prefers_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ffmpeg on PATH (the real one is not installed here) gets the call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    fake.write_text(
        '#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nfor last; do :; done; echo mp3 > "$last"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    to_mp3(tmp_path / "in.wav", tmp_path / "out.mp3", bitrate=24)
    args = (bin_dir / "args").read_text().split()
    assert args == [
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
        *("-i", str(tmp_path / "in.wav"), "-codec:a", "libmp3lame", "-b:a", "24k"),
        str(tmp_path / "out.mp3"),
    ]
    assert (tmp_path / "out.mp3").read_text() == "mp3\n"
