"""SDP rewriting (veil/calls/sdp.py): nothing that names a party crosses the B2BUA in a
session description, and the "black hole" answer of third-party call control.

Field names and order: RFC 8866 section 5.
"""

from __future__ import annotations

import pytest

from veil.calls.sdp import discard_answer, hold_answer, neutralize, with_origin

CALLER = b"14155550100"  # the caller's number, as phones put it in free-text fields


def sdp(*lines: str, newline: bytes = b"\r\n") -> bytes:
    """A body of ``lines``, each ended by ``newline`` as on the wire."""
    return b"".join(line.encode() + newline for line in lines)


def lines_of(body: bytes) -> list[bytes]:
    newline = b"\r\n" if b"\r\n" in body else b"\n"
    return [line for line in body.split(newline) if line]


# A typical phone offer: two streams, session- and media-level c=.
OFFER_LINES = (
    "v=0",
    "o=alice 2890844526 2890844527 IN IP4 198.51.100.7",
    "s=Talk",
    "c=IN IP4 198.51.100.7",
    "b=AS:84",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=audio 49170 RTP/AVP 0 8 101",
    "c=IN IP4 198.51.100.7",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendrecv",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 H264/90000",
    "a=recvonly",
)


# --- neutralize -------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_neutralize_origin_and_session_name(newline: bytes) -> None:
    out = neutralize(sdp(*OFFER_LINES, newline=newline))
    expected = list(OFFER_LINES)
    expected[1] = "o=- 2890844526 2890844527 IN IP4 198.51.100.7"
    expected[2] = "s=-"
    assert out == sdp(*expected, newline=newline)


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_neutralize_keeps_the_line_ending(newline: bytes) -> None:
    out = neutralize(sdp(*OFFER_LINES, newline=newline))
    assert out.endswith(newline)
    if newline == b"\n":
        assert b"\r" not in out
    else:
        assert out.count(b"\r\n") == out.count(b"\n") == len(OFFER_LINES)


def test_neutralize_without_a_final_newline() -> None:
    body = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=Talk\r\nt=0 0"
    assert neutralize(body) == b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0"


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_neutralize_drops_informational_lines_at_both_levels(newline: bytes) -> None:
    body = sdp(
        "v=0",
        "o=alice 1 1 IN IP4 192.0.2.1",
        "s=Talk",
        "i=A call from Alice",
        "u=https://alice.example.com/",
        "e=alice@example.com (Alice)",
        "p=+1 415 555 0100",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "i=Alice's microphone",
        "c=IN IP4 192.0.2.1",
        "a=rtpmap:0 PCMU/8000",
        newline=newline,
    )
    assert neutralize(body) == sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "c=IN IP4 192.0.2.1",
        "a=rtpmap:0 PCMU/8000",
        newline=newline,
    )


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
@pytest.mark.parametrize(
    "number", [CALLER, b"+" + CALLER, b"tel:+" + CALLER, b"sip:+" + CALLER + b"@192.0.2.1"]
)
def test_a_callers_number_never_survives(newline: bytes, number: bytes) -> None:
    text = number.decode()
    body = sdp(
        "v=0",
        f"o={text} 3724394400 3724394405 IN IP4 203.0.113.9",
        f"s={text}",
        f"i=Call from {text}",
        f"u=https://example.com/{text}",
        f"e={text}@example.com",
        f"p={text}",
        "c=IN IP4 203.0.113.9",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        f"i={text}",
        "a=rtpmap:0 PCMU/8000",
        newline=newline,
    )
    assert CALLER in body
    out = neutralize(body)
    assert CALLER not in out
    assert b"5550100" not in out
    # What does not name anyone is all still there.
    assert lines_of(out) == [
        b"v=0",
        b"o=- 3724394400 3724394405 IN IP4 203.0.113.9",
        b"s=-",
        b"c=IN IP4 203.0.113.9",
        b"t=0 0",
        b"m=audio 4000 RTP/AVP 0",
        b"a=rtpmap:0 PCMU/8000",
    ]


def test_origin_fields_other_than_the_username_are_kept() -> None:
    out = neutralize(sdp("v=0", "o=jdoe 123456 654321 IN IP6 2001:db8::1", "s= ", "t=0 0"))
    assert lines_of(out)[1] == b"o=- 123456 654321 IN IP6 2001:db8::1"
    assert lines_of(out)[2] == b"s=-"


def test_neutralize_is_idempotent() -> None:
    once = neutralize(sdp(*OFFER_LINES))
    assert neutralize(once) == once


def test_neutralize_leaves_attributes_alone() -> None:
    # a= lines that merely start with a dropped letter's value are attributes, kept.
    body = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "a=ptime:20",
        "a=ice-ufrag:uEdp",
        "a=ice-pwd:e0123456789",
        "a=fingerprint:sha-256 AB:CD",
    )
    assert neutralize(body) == body


@pytest.mark.parametrize("body", [b"", b"\r\n"])
def test_neutralize_empty_body(body: bytes) -> None:
    assert neutralize(body) == body


def test_neutralize_a_username_with_spaces() -> None:
    # RFC 8866 forbids spaces in the username, but the module exists because phones put
    # the user's name or number there: a non-conforming o= must not leak them either.
    body = sdp(
        "v=0",
        "o=+1 415 555 0100 2890844526 2890844527 IN IP4 198.51.100.7",
        "s=-",
        "t=0 0",
    )
    out = neutralize(body)
    assert b"555 0100" not in out
    assert lines_of(out)[1] == b"o=- 2890844526 2890844527 IN IP4 198.51.100.7"


# --- hold_answer ------------------------------------------------------------------------------

ORIGIN = b"- 1804289383 1 IN IP4 192.0.2.53"


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_hold_answer(newline: bytes) -> None:
    out = hold_answer(sdp(*OFFER_LINES, newline=newline), ORIGIN)
    found = lines_of(out)
    assert found[1] == b"o=" + ORIGIN
    assert [line for line in found if line.startswith(b"o=")] == [b"o=" + ORIGIN]
    connections = [line for line in found if line.startswith(b"c=")]
    assert connections == [b"c=IN IP4 0.0.0.0"] * 2  # session and media level
    assert b"198.51.100.7" not in out
    media = [line for line in found if line.startswith(b"m=")]
    assert media == [b"m=audio 49170 RTP/AVP 0 8 101", b"m=video 51372 RTP/AVP 99"]
    assert found.count(b"a=inactive") == len(media)
    for direction in (b"a=sendrecv", b"a=sendonly", b"a=recvonly"):
        assert direction not in found
    # Codecs and other attributes are accepted as offered.
    for line in ("a=rtpmap:0 PCMU/8000", "a=rtpmap:99 H264/90000", "a=fmtp:101 0-15"):
        assert line.encode() in found
    assert out.endswith(newline)
    if newline == b"\n":
        assert b"\r" not in out


def test_hold_answer_one_inactive_per_stream() -> None:
    offer = sdp(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.2",
        "s=-",
        "c=IN IP4 192.0.2.2",
        "t=0 0",
        "a=sendonly",  # session-level direction: removed too
        "m=audio 4000 RTP/AVP 0",
        "a=inactive",  # already inactive: not doubled
        "m=audio 4002 RTP/AVP 8",
        "a=sendonly",
        "m=audio 4004 RTP/AVP 18",
    )
    found = lines_of(hold_answer(offer, ORIGIN))
    assert found.count(b"a=inactive") == 3
    assert b"a=sendonly" not in found
    # Each stream's a=inactive belongs to that stream: after its m= line, before the next.
    starts = [i for i, line in enumerate(found) if line.startswith(b"m=")]
    ends = [*starts[1:], len(found)]
    for start, end in zip(starts, ends, strict=True):
        assert found[start:end].count(b"a=inactive") == 1
    assert not any(line == b"a=inactive" for line in found[: starts[0]])


def test_hold_answer_drops_informational_lines() -> None:
    offer = sdp(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.2",
        "s=-",
        "i=Bob",
        "e=bob@example.com",
        "p=+14155550100",
        "u=https://bob.example.com/",
        "c=IN IP4 192.0.2.2",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "i=Bob's phone",
        "a=rtpmap:0 PCMU/8000",
    )
    found = lines_of(hold_answer(offer, ORIGIN))
    assert found == [
        b"v=0",
        b"o=" + ORIGIN,
        b"s=-",
        b"c=IN IP4 0.0.0.0",
        b"t=0 0",
        b"m=audio 4000 RTP/AVP 0",
        b"a=rtpmap:0 PCMU/8000",
        b"a=inactive",
    ]


def test_hold_answer_keeps_rfc8866_line_order() -> None:
    # Within a media description the order is m=, i=, c=, b=, k=, a= (RFC 8866 section
    # 5): the added a=inactive must come after a media-level c= and b=, not before them.
    offer = sdp(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.2",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 192.0.2.2",
        "b=AS:64",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    )
    found = lines_of(hold_answer(offer, ORIGIN))
    media = found[found.index(b"m=audio 4000 RTP/AVP 0") :]
    kinds = [line[:2] for line in media]
    order = [b"m=", b"i=", b"c=", b"b=", b"k=", b"a="]
    assert kinds == sorted(kinds, key=order.index), media


def test_hold_answer_empty_offer() -> None:
    assert hold_answer(b"", ORIGIN) == b""


# --- with_origin ------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_with_origin(newline: bytes) -> None:
    body = sdp(*OFFER_LINES, newline=newline)
    out = with_origin(body, ORIGIN)
    expected = list(OFFER_LINES)
    expected[1] = "o=" + ORIGIN.decode()
    assert out == sdp(*expected, newline=newline)


def test_with_origin_version_can_rise() -> None:
    first = with_origin(sdp(*OFFER_LINES), b"- 42 1 IN IP4 192.0.2.53")
    second = with_origin(first, b"- 42 2 IN IP4 192.0.2.53")
    assert lines_of(second)[1] == b"o=- 42 2 IN IP4 192.0.2.53"
    assert lines_of(second)[2:] == lines_of(first)[2:]


def test_with_origin_after_neutralize_hides_the_party() -> None:
    body = sdp("v=0", f"o={CALLER.decode()} 7 7 IN IP4 203.0.113.9", "s=Call", "t=0 0")
    out = with_origin(neutralize(body), ORIGIN)
    assert CALLER not in out
    assert lines_of(out) == [b"v=0", b"o=" + ORIGIN, b"s=-", b"t=0 0"]


def test_with_origin_without_an_origin_line() -> None:
    body = sdp("v=0", "s=-", "t=0 0")
    assert with_origin(body, ORIGIN) == body


# --- the answer rtpengine gets for the absent leg B while Veil talks to leg A -----------


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_discard_answer_keeps_the_codecs_and_answers_from_the_discard_port(
    newline: bytes,
) -> None:
    offer = sdp(*OFFER_LINES, "a=sendonly", "a=rtcp:49171", newline=newline)
    answer = discard_answer(offer, "10.1.2.3")
    got = lines_of(answer)
    assert [line for line in got if line.startswith(b"c=")] == [b"c=IN IP4 10.1.2.3"] * len(
        [line for line in lines_of(offer) if line.startswith(b"c=")]
    )
    media = [line for line in got if line.startswith(b"m=")]
    offered = [line for line in lines_of(offer) if line.startswith(b"m=")]
    assert [m.split(b" ")[1] for m in media] == [b"9"] * len(offered)
    assert [m.split(b" ", 2)[2] for m in media] == [m.split(b" ", 2)[2] for m in offered]
    assert [line for line in got if line.startswith(b"o=")] == [b"o=- 0 0 IN IP4 10.1.2.3"]
    # Not a hold: no direction (sendrecv by default), no inactive, no 0.0.0.0.
    for absent in (b"a=sendonly", b"a=inactive", b"a=recvonly", b"0.0.0.0", b"a=rtcp:"):
        assert absent not in answer
    assert CALLER not in answer
    assert answer.endswith(newline)
