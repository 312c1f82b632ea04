"""Bencode (veil.media.bencode): the format's own examples, rtpengine's wire examples,
round trips (also as properties) and the strictness the NG socket needs."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.media.bencode import MAX_DEPTH, BencodeError, decode, encode


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"i0e"),
        (42, b"i42e"),
        (-3, b"i-3e"),
        (2**100, b"i1267650600228229401496703205376e"),
        (b"", b"0:"),
        (b"spam", b"4:spam"),
        ("é", b"2:\xc3\xa9"),  # str goes as UTF-8; the length counts bytes
        ([], b"le"),
        (["spam", 42], b"l4:spami42ee"),
        ({}, b"de"),
        ({"cow": "moo", "spam": "eggs"}, b"d3:cow3:moo4:spam4:eggse"),
        ({"command": "ping"}, b"d7:command4:pinge"),  # rtpengine's documented ping
        ((1, (2,)), b"li1eli2eee"),  # tuples are lists
    ],
)
def test_encode_known_values(value: Any, wire: bytes) -> None:
    assert encode(value) == wire


def test_encode_sorts_keys_by_their_bytes() -> None:
    value: dict[str | bytes, int | str] = {
        "zeta": 1,
        b"alpha": 2,
        "Beta": 3,
        "delete delay": 0,
        "call-id": "x",
    }
    assert encode(value) == b"d4:Betai3e5:alphai2e7:call-id1:x12:delete delayi0e4:zetai1ee"


@pytest.mark.parametrize("value", [True, False, None, 1.5, {1: 2}, object(), [b"ok", None]])
def test_encode_refuses_what_bencode_cannot_say(value: Any) -> None:
    with pytest.raises(TypeError):
        encode(value)


def test_encode_refuses_keys_that_collide() -> None:
    with pytest.raises(BencodeError, match="duplicate"):
        encode({"a": 1, b"a": 2})


def test_encode_refuses_cycles_and_too_deep_nesting() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(BencodeError, match="deeper"):
        encode(cycle)
    deep: Any = 0
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert decode(encode(deep)) == deep
    with pytest.raises(BencodeError):
        encode([deep])


def test_decode_keys_as_text_and_values_as_bytes() -> None:
    assert decode(b"d3:cow3:mooe") == {"cow": b"moo"}
    assert decode(b"d3:cow3:mooe", text=True) == {"cow": "moo"}
    # Not UTF-8: stays bytes, key and value alike.
    assert decode(b"d1:\xff1:\xfee", text=True) == {b"\xff": b"\xfe"}


def test_decode_accepts_unsorted_keys_as_rtpengine_sends_them() -> None:
    assert decode(b"d6:result5:error12:error-reason15:Unknown call-ide", text=True) == {
        "result": "error",
        "error-reason": "Unknown call-id",
    }


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"i",
        b"ie",
        b"i-e",
        b"i-0e",
        b"i03e",
        b"i-03e",
        b"i1.5e",
        b"i+1e",
        b"i 1e",
        b"i1_0e",
        b"i1",
        b"1:",
        b"2:a",
        b"03:abc",
        b"-1:a",
        b"1a:x",
        b":",
        b"l",
        b"li1e",
        b"d",
        b"d1:a",
        b"d1:ae",
        b"di1ei2ee",
        b"dlei1ee",
        b"d1:ai1e1:ai2ee",  # duplicate key
        b"i1ei2e",  # trailing data
        b"le ",
        b"x",
        b"e",
        b"\xff",
        b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1),
        b"l" * 100_000,
    ],
)
def test_decode_rejects_malformed_input(wire: bytes) -> None:
    with pytest.raises(BencodeError):
        decode(wire)


def test_bencode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode(b"i01e")


def test_depth_limit_is_exact_and_adjustable() -> None:
    at_limit = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    assert decode(at_limit) is not None
    with pytest.raises(BencodeError):
        decode(b"l" + at_limit + b"e")
    with pytest.raises(BencodeError):
        decode(b"llee", max_depth=1)
    assert decode(b"llee", max_depth=2) == [[]]


# --- properties ---------------------------------------------------------------------------

scalars = st.binary(max_size=40) | st.integers()
text_keyed = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
bytes_keyed = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def _keys_as_text(value: Any) -> Any:
    """What decode() makes of a value: keys become str where they are UTF-8."""
    if isinstance(value, list):
        return [_keys_as_text(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            with contextlib.suppress(UnicodeDecodeError):
                key = key.decode()
            out[key] = _keys_as_text(item)
        return out
    return value


@given(text_keyed)
def test_round_trip(value: Any) -> None:
    assert decode(encode(value)) == value


@given(bytes_keyed)
def test_round_trip_with_byte_keys(value: Any) -> None:
    wire = encode(value)
    assert decode(wire) == _keys_as_text(value)
    # Encoding is canonical: what we read back encodes to the very same bytes.
    assert encode(decode(wire)) == wire


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_bencode_error(data: bytes) -> None:
    try:
        value = decode(data)
    except BencodeError:
        return
    # Anything accepted was canonical, bar key order (which does not change the length).
    assert len(encode(value)) == len(data)
    assert decode(encode(value)) == value


@given(text_keyed, st.data())
def test_damaged_encodings_raise_only_bencode_error(value: Any, data: st.DataObject) -> None:
    wire = bytearray(encode(value))
    position = data.draw(st.integers(0, len(wire) - 1))
    if data.draw(st.booleans()):
        del wire[position]
    else:
        wire[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(BencodeError):
        decode(bytes(wire))
