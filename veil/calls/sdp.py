"""SDP rewriting that removes what could identify a party (RFC 8866 field names).

The origin's username and the session name are free text that phones fill with the
user's name or number; ``i=``, ``u=``, ``e=`` and ``p=`` carry descriptions, URLs,
e-mail addresses and phone numbers. Media addresses (``c=``, ``m=``) stay: anchoring
them in rtpengine is the media engine's job (``veil.calls.media``).
"""

from __future__ import annotations

_DROPPED = (b"i=", b"u=", b"e=", b"p=")
_NEUTRAL_ORIGIN = b"o=- 0 0 IN IP4 0.0.0.0"
_DIRECTIONS = frozenset({b"a=sendrecv", b"a=sendonly", b"a=recvonly", b"a=inactive"})


def neutralize(sdp: bytes) -> bytes:
    """The same session description with ``o=`` username ``-`` and ``s=`` ``-``, and
    without informational lines. Line order and everything else are kept."""
    if not sdp:
        return sdp
    newline = b"\r\n" if b"\r\n" in sdp else b"\n"
    out: list[bytes] = []
    for line in sdp.split(newline):
        if line.startswith(b"o="):
            # The last five fields are sess-id, version and address; whatever precedes
            # them is the username, even if a phone put spaces in it.
            fields = line[2:].split()
            line = b"o=- " + b" ".join(fields[-5:]) if len(fields) >= 6 else _NEUTRAL_ORIGIN
        elif line.startswith(b"s="):
            line = b"s=-"
        elif line.startswith(_DROPPED):
            continue
        out.append(line)
    return newline.join(out)


def hold_answer(offer: bytes, origin: bytes) -> bytes:
    """An answer that accepts ``offer``'s streams but sends and receives nothing
    (RFC 3725's "black hole": connection address 0.0.0.0, ``a=inactive``). Used to
    complete a party's call setup before the other party can give real media."""
    if not offer:
        return offer
    newline = b"\r\n" if b"\r\n" in offer else b"\n"
    lines = offer.split(newline)
    trailing = lines[-1] == b""
    out: list[bytes] = []
    in_media = False
    for line in lines[:-1] if trailing else lines:
        if line.startswith(b"m="):
            if in_media:
                out.append(b"a=inactive")  # attributes close a media section (RFC 8866)
            in_media = True
        if line.startswith(b"o="):
            line = b"o=" + origin
        elif line.startswith(b"c="):
            line = b"c=IN IP4 0.0.0.0"
        elif line in _DIRECTIONS or line.startswith(_DROPPED):
            continue
        out.append(line)
    if in_media:
        out.append(b"a=inactive")
    return newline.join(out) + (newline if trailing else b"")


def discard_answer(offer: bytes, address: str) -> bytes:
    """What rtpengine is told the absent leg B answered while Veil alone talks to leg
    A (prompts, PIN): ``offer``'s codecs, sendrecv, at ``address``'s discard port 9.
    Not the black hole: rtpengine reads 0.0.0.0 as hold and would answer leg A with
    hold too, and A would neither hear the prompt nor send its keys."""
    newline = b"\r\n" if b"\r\n" in offer else b"\n"
    out: list[bytes] = []
    for line in offer.split(newline):
        if line.startswith(b"o="):
            line = b"o=- 0 0 IN IP4 " + address.encode()
        elif line.startswith(b"c="):
            line = b"c=IN IP4 " + address.encode()
        elif line.startswith(b"m="):
            kind, _port, rest = line.split(b" ", 2)
            line = b" ".join((kind, b"9", rest))
        elif line in _DIRECTIONS or line.startswith(_DROPPED) or line.startswith(b"a=rtcp:"):
            continue
        out.append(line)
    return newline.join(out)


def with_origin(sdp: bytes, origin: bytes) -> bytes:
    """``sdp`` with its ``o=`` line replaced (a re-offer keeps the origin of the
    session the party already knows, with a higher version, RFC 3264 section 8)."""
    newline = b"\r\n" if b"\r\n" in sdp else b"\n"
    return newline.join(
        b"o=" + origin if line.startswith(b"o=") else line for line in sdp.split(newline)
    )
