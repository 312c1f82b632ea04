"""Bencode, the encoding of rtpengine's NG control protocol.

Encoding accepts ``bytes``/``bytearray``, ``str`` (sent as UTF-8), ``int``, sequences
(``list``/``tuple``) and mappings with ``str`` or ``bytes`` keys, which are written in
sorted byte order as the format requires. ``bool`` is refused (``TypeError``): it is an
``int`` in Python, and silently sending ``True`` as ``i1e`` hides bugs, because rtpengine
expects strings such as ``"yes"`` for its switches. ``None`` and floats are refused too.

Decoding is strict, since the input comes from the network: malformed input, leading
zeros, ``-0``, trailing data, duplicate keys and nesting deeper than ``max_depth`` raise
``BencodeError``. One leniency: dictionary keys need not be sorted, because rtpengine does
not sort the keys of its replies (its NG documentation says so). Keys are returned as
``str`` when they are valid UTF-8 (else ``bytes``); values stay ``bytes`` unless
``text=True`` asks for the same treatment of byte strings in values.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["MAX_DEPTH", "Bencodable", "BencodeError", "Decoded", "decode", "encode"]

# Three Mapping arms because Mapping is invariant in its key type: Mapping[str | bytes, ...]
# alone would refuse a plain dict[str, ...], and the other two a decoded dictionary.
Bencodable: TypeAlias = (
    "bytes | bytearray | str | int | Sequence[Bencodable] | Mapping[str, Bencodable]"
    " | Mapping[bytes, Bencodable] | Mapping[str | bytes, Bencodable]"
)
Decoded: TypeAlias = "bytes | str | int | list[Decoded] | dict[str | bytes, Decoded]"

# rtpengine's deepest replies ('query') nest about eight levels; 64 leaves ample room while
# keeping a hostile datagram like b"l" * 10_000 away from Python's recursion limit.
MAX_DEPTH = 64

_DIGITS = frozenset(b"0123456789")


class BencodeError(ValueError):
    """The input is not valid bencode (or a value cannot be represented in it)."""


# --- encoding -----------------------------------------------------------------------------


def encode(value: Bencodable) -> bytes:
    """The bencoding of ``value``."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _key_bytes(key: object) -> bytes:
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes | bytearray):
        return bytes(key)
    raise TypeError(f"bencode dictionary keys must be str or bytes, not {type(key).__name__}")


def _encode(value: object, out: list[bytes], depth: int) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans; send an int or a string such as 'yes'")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        raw = value.encode()
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, Mapping | Sequence) and depth >= MAX_DEPTH:
        # The same limit as decode(), so whatever we send we could read back; also stops cycles.
        raise BencodeError(f"nesting deeper than {MAX_DEPTH} levels")
    elif isinstance(value, Mapping):
        items = sorted((_key_bytes(k), v) for k, v in value.items())
        for (previous, _), (current, _) in itertools.pairwise(items):
            if previous == current:
                raise BencodeError(f"duplicate dictionary key {current!r}")
        out.append(b"d")
        for key, item in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode a {type(value).__name__}")


# --- decoding -----------------------------------------------------------------------------


def decode(data: bytes, *, text: bool = False, max_depth: int = MAX_DEPTH) -> Decoded:
    """The value bencoded in ``data``, which must hold exactly one value.

    With ``text=True`` byte strings that are valid UTF-8 are returned as ``str``.
    """
    decoder = _Decoder(bytes(data), text, max_depth)
    value = decoder.value(0)
    if decoder.pos != len(decoder.data):
        raise BencodeError(f"trailing data at offset {decoder.pos}")
    return value


def _as_text(raw: bytes) -> str | bytes:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


class _Decoder:
    __slots__ = ("data", "max_depth", "pos", "text")

    def __init__(self, data: bytes, text: bool, max_depth: int) -> None:
        self.data = data
        self.text = text
        self.max_depth = max_depth
        self.pos = 0

    def value(self, depth: int) -> Decoded:
        if self.pos >= len(self.data):
            raise BencodeError("unexpected end of data")
        lead = self.data[self.pos]
        if lead == 0x69:  # i
            return self.integer()
        if lead in _DIGITS:
            raw = self.string()
            return _as_text(raw) if self.text else raw
        if lead in (0x6C, 0x64):  # l, d
            if depth >= self.max_depth:
                raise BencodeError(f"nesting deeper than {self.max_depth} levels")
            self.pos += 1
            return self.listing(depth) if lead == 0x6C else self.dictionary(depth)
        raise BencodeError(f"unexpected byte {bytes([lead])!r} at offset {self.pos}")

    def _number(self, end: int, what: str) -> int:
        """The decimal number in data[pos:end], with the canonical-form checks."""
        digits = self.data[self.pos : end]
        body = digits[1:] if digits.startswith(b"-") else digits
        if not body or not all(c in _DIGITS for c in body):
            raise BencodeError(f"invalid {what} {digits!r} at offset {self.pos}")
        if body != b"0" and body.startswith(b"0"):
            raise BencodeError(f"leading zero in {what} at offset {self.pos}")
        if digits == b"-0":
            raise BencodeError(f"negative zero at offset {self.pos}")
        return int(digits)

    def integer(self) -> int:
        self.pos += 1
        end = self.data.find(b"e", self.pos)
        if end < 0:
            raise BencodeError("unterminated integer")
        number = self._number(end, "integer")
        self.pos = end + 1
        return number

    def string(self) -> bytes:
        colon = self.data.find(b":", self.pos)
        if colon < 0:
            raise BencodeError("string length without ':'")
        if self.data[self.pos] == 0x2D:  # '-': lengths are never negative
            raise BencodeError(f"negative string length at offset {self.pos}")
        length = self._number(colon, "string length")
        start = colon + 1
        if start + length > len(self.data):
            raise BencodeError(f"string at offset {self.pos} runs past the end of the data")
        self.pos = start + length
        return self.data[start : self.pos]

    def listing(self, depth: int) -> list[Decoded]:
        items: list[Decoded] = []
        while True:
            if self.pos >= len(self.data):
                raise BencodeError("unterminated list")
            if self.data[self.pos] == 0x65:  # e
                self.pos += 1
                return items
            items.append(self.value(depth + 1))

    def dictionary(self, depth: int) -> dict[str | bytes, Decoded]:
        result: dict[str | bytes, Decoded] = {}
        while True:
            if self.pos >= len(self.data):
                raise BencodeError("unterminated dictionary")
            lead = self.data[self.pos]
            if lead == 0x65:  # e
                self.pos += 1
                return result
            if lead not in _DIGITS:
                raise BencodeError(f"dictionary key at offset {self.pos} is not a string")
            key = _as_text(self.string())
            if key in result:
                raise BencodeError(f"duplicate dictionary key {key!r}")
            result[key] = self.value(depth + 1)
