"""Focused tests of the SIP message parser (veil.sip.message, veil.sip.grammar): header
names and lists, quoting, addresses, URIs, serialization, stream framing, and a fuzz
run showing that bad input only ever raises ParseError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.sip.errors import ParseError
from veil.sip.grammar import (
    Address,
    parse_address,
    parse_params,
    parse_uri,
    parse_via,
    split_commas,
    unquote,
)
from veil.sip.message import (
    COMPACT,
    Headers,
    Request,
    Response,
    StreamFramer,
    canonical,
    parse_message,
    parse_partial,
    response_to,
)

TORTURE = Path(__file__).parent / "torture"


def sip(*lines: str, body: bytes = b"") -> bytes:
    """A message from its head lines, CRLF-terminated, then the body."""
    return "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n" + body


def invite(*extra: str, body: bytes = b"", length: bool = True) -> bytes:
    lines = [
        "INVITE sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@example.com>",
        "From: Alice <sip:alice@example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.example.com>",
        *extra,
    ]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return sip(*lines, body=body)


def parse_request(data: bytes, *, stream: bool = False) -> Request:
    message = parse_message(data, stream=stream)
    assert isinstance(message, Request)
    return message


# -- header names --------------------------------------------------------------------


def test_compact_names_expand() -> None:
    data = sip(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "v: SIP/2.0/TCP pc33.example.com;branch=z9hG4bKc1",
        "t: <sip:bob@example.com>",
        "f: <sip:alice@example.com>;tag=9",
        "i: compact@pc33.example.com",
        "CSeq: 1 OPTIONS",
        "m: <sip:alice@pc33.example.com>",
        "c: text/plain",
        "s: hello",
        "k: 100rel, timer",
        "l: 2",
        body=b"hi",
    )
    req = parse_request(data, stream=True)
    assert [name for name, _ in req.headers] == [
        "Via",
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Type",
        "Subject",
        "Supported",
        "Content-Length",
    ]
    assert req.call_id == "compact@pc33.example.com"
    assert req.headers.values("Supported") == ["100rel", "timer"]
    assert req.body == b"hi"
    for short, full in COMPACT.items():
        assert canonical(short) == canonical(short.upper()) == full


def test_names_are_case_insensitive() -> None:
    req = parse_request(invite("X-Custom-Thing: 1", "x-CUSTOM-thing: 2", "SUBJECT: s"))
    for name in ("Call-ID", "call-id", "CALL-ID", "i", "I"):
        assert req.headers.get(name) == "a84b4c76e66710@pc33.example.com"
    assert req.headers.raw_values("x-custom-THING") == ["1", "2"]
    assert req.headers.get("subject") == "s"
    # Known names are stored in their canonical spelling.
    assert [n for n, _ in req.headers if n.lower() == "subject"] == ["Subject"]
    # Two spellings of one single-valued field are still two of it.
    with pytest.raises(ParseError, match="more than one max-forwards"):
        parse_message(invite("max-FORWARDS: 5"))


def test_headers_set_remove_and_equality() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("Via", "SIP/2.0/UDP d")])
    headers.set("via", "SIP/2.0/UDP e")
    assert list(headers) == [("Via", "SIP/2.0/UDP e"), ("To", "<sip:b@c>")]
    assert headers == Headers([("VIA", "SIP/2.0/UDP e"), ("t", "<sip:b@c>")])
    assert headers != Headers([("To", "<sip:b@c>"), ("Via", "SIP/2.0/UDP e")])  # order
    headers.remove("TO")
    assert "To" not in headers and len(headers) == 1


def test_bad_header_lines() -> None:
    with pytest.raises(ParseError, match="bad header line"):
        parse_message(invite("No colon here"))
    with pytest.raises(ParseError, match="bad header line"):
        parse_message(invite("Bad Name: x"))
    with pytest.raises(ParseError, match="bare CR"):
        parse_message(invite("Subject: a\rInjected: b"))
    with pytest.raises(ParseError, match="not UTF-8"):
        parse_message(invite().replace(b"Bob", b"B\xffb"))


# -- folding and lists ---------------------------------------------------------------


def test_folded_lines() -> None:
    req = parse_request(
        invite(
            "Subject: I know you're there,",
            "   pick up the phone",
            "\tand talk to me!",
            "Route: <sip:p1.example.com;lr>,",
            " <sip:p2.example.com;lr>",
        )
    )
    assert req.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert [a.uri.host for a in req.addresses("Route")] == ["p1.example.com", "p2.example.com"]
    with pytest.raises(ParseError, match="continuation line before the start line"):
        parse_message(b" INVITE sip:a@b SIP/2.0\r\n\r\n")


def test_comma_separated_via_and_contact_lists() -> None:
    req = parse_request(
        invite(
            "Via: SIP/2.0/TCP p1.example.com:5061;branch=z9hG4bKa;received=192.0.2.1,"
            " SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bKb ,SIP/2.0/SCTP p3;branch=z9hG4bKc",
            'Contact: "Doe, John" <sip:john,doe@p4.example.com;x=1>;q=0.5,'
            ' sip:j@p5.example.com;expires=60, <sip:j@p6.example.com>;note="a, b"',
        ).replace(b"Contact: <sip:alice@pc33.example.com>\r\n", b"")
    )
    assert [(v.transport, v.host, v.port, v.branch) for v in req.vias] == [
        ("UDP", "pc33.example.com", None, "z9hG4bK776asdhds"),
        ("TCP", "p1.example.com", 5061, "z9hG4bKa"),
        ("UDP", "[2001:db8::9]", 5062, "z9hG4bKb"),
        ("SCTP", "p3", None, "z9hG4bKc"),
    ]
    contacts = req.addresses("Contact")
    assert [(c.display, c.uri.user, c.uri.host) for c in contacts] == [
        ("Doe, John", "john,doe", "p4.example.com"),
        (None, "j", "p5.example.com"),
        (None, "j", "p6.example.com"),
    ]
    assert [c.params for c in contacts] == [{"q": "0.5"}, {"expires": "60"}, {"note": '"a, b"'}]
    assert req.contact == contacts[0]


def test_empty_list_elements_and_parameters_are_errors() -> None:
    assert split_commas(" a , ,b,") == ["a", "b"]  # lenient for reading values
    assert split_commas("  ", strict=True) == []
    with pytest.raises(ParseError, match="empty element"):
        split_commas("a,,b", strict=True)
    with pytest.raises(ParseError, match="empty parameter"):
        parse_params(";a;;b")
    with pytest.raises(ParseError, match="empty parameter"):
        parse_via("SIP/2.0/UDP h;branch=z9hG4bKx;")
    for bad in ("Via: SIP/2.0/UDP h2;branch=z9hG4bKy,", "Contact: <sip:x@y>;"):
        with pytest.raises(ParseError, match="empty"):
            parse_message(invite(bad))


# -- quoted strings and addresses ----------------------------------------------------


def test_quoted_strings_with_escapes_and_commas() -> None:
    text = r'"Hello \"World\", \\ again" <sip:a@b.example.com>;p="x,\"y\";z";tag=t1'
    address = parse_address(text)
    assert address.display == 'Hello "World", \\ again'
    assert address.params == {"p": r'"x,\"y\";z"', "tag": "t1"}
    assert unquote(address.params["p"] or "") == 'x,"y";z'
    assert split_commas(f"{text}, <sip:c@d>") == [text, "<sip:c@d>"]
    with pytest.raises(ParseError, match="unterminated quoted string"):
        parse_address('"open <sip:a@b>')
    with pytest.raises(ParseError, match="junk after quoted parameter value"):
        parse_params(';p="a"b')


def test_name_addr_and_addr_spec() -> None:
    # addr-spec: everything after the first ';' is a header parameter.
    spec = parse_address("sip:bob@example.com;transport=tcp;tag=abc")
    assert spec.display is None
    assert spec.uri.params == {}
    assert spec.params == {"transport": "tcp", "tag": "abc"}
    # name-addr: parameters inside <> are the URI's.
    name = parse_address("Bob <sip:bob@example.com;transport=tcp>;tag=abc")
    assert (name.display, name.tag) == ("Bob", "abc")
    assert name.uri.params == {"transport": "tcp"}
    assert name.uri.transport == "tcp"
    assert parse_address("<sip:bob@example.com>").display is None
    assert parse_address("Bob Smith<sip:b@c>").display == "Bob Smith"
    for bad in (
        "sip:bob@example.com?subject=x",  # reserved characters need <>
        "sip:a@b, sip:c@d",
        "Bob, Smith <sip:b@c>",  # non-token display names need quotes
        '"Bob" sip:b@c',
        "<sip:b@c> junk",
        "< sip:b@c>",
        "<tel:not a number>",
        "",
    ):
        with pytest.raises(ParseError):
            parse_address(bad)


def test_tel_uris_in_identity_headers() -> None:
    # Trunks send tel: in From and P-Asserted-Identity (RFC 3966); the number is the user.
    address = parse_address("<tel:+14155550100;cpc=ordinary>;tag=x")
    assert address.uri.scheme == "tel"
    assert address.uri.user == "+14155550100"
    assert address.uri.params == {"cpc": "ordinary"}
    assert address.tag == "x"
    assert str(address.uri) == "tel:+14155550100;cpc=ordinary"
    assert parse_uri(str(address.uri)) == address.uri


@pytest.mark.parametrize(
    "display",
    [
        "plain",
        'with "quotes"',
        "back\\slash",
        'both \\" at once\\',
        "nul\x00 bel\x07 del\x7f",
        "é ü",
    ],
)
def test_address_str_round_trip(display: str) -> None:
    uri = parse_uri("sip:bob@example.com;transport=tcp")
    address = Address(uri, display, {"tag": "x1", "flag": None})
    text = str(address)
    assert parse_address(text) == address
    # What we write is in header grammar: it survives a whole message.
    req = parse_request(invite().replace(b"To: Bob <sip:bob@example.com>", f"To: {text}".encode()))
    assert req.to == address


def test_address_str_never_breaks_the_header() -> None:
    address = Address(parse_uri("sip:a@b"), "evil\r\nVia: SIP/2.0/UDP x")
    assert "\r" not in str(address) and "\n" not in str(address)
    assert parse_address(str(address)).display == "evil  Via: SIP/2.0/UDP x"


# -- URIs ------------------------------------------------------------------------------


def test_uri_parts_params_and_headers() -> None:
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5071;transport=TCP;lr;maddr=239.255.255.1")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "[2001:db8::1]",
        5071,
    )
    assert uri.params == {"transport": "TCP", "lr": None, "maddr": "239.255.255.1"}
    assert uri.transport == "tcp"
    assert parse_uri(str(uri)) == uri
    with_headers = parse_uri("sip:carol@chicago.com;x=1?Subject=next%20meeting&Priority=urgent")
    assert with_headers.headers == "Subject=next%20meeting&Priority=urgent"
    assert with_headers.params == {"x": "1"}
    assert str(with_headers) == "sip:carol@chicago.com;x=1?Subject=next%20meeting&Priority=urgent"
    assert parse_uri("SIP:Host.Example.COM").scheme == "sip"
    assert parse_uri("sip:h").transport == "udp" and parse_uri("sips:h").transport == "tls"


def test_uri_user_may_hold_reserved_characters() -> None:
    uri = parse_uri("sip:+1-555;phone-context=x?y,z/@gw.example.com;user=phone")
    assert (uri.user, uri.host, uri.params) == (
        "+1-555;phone-context=x?y,z/",
        "gw.example.com",
        {"user": "phone"},
    )
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "tel:+1 555",
        "http://example.com/",
        "sip:",
        "sip:@host",
        "sip:a@",
        "sip:a b@host",
        "sip:host:",
        "sip:host:0",
        "sip:host:70000",
        "sip:host:５０６０",  # fullwidth digits
        "sip:host;",
        "sip:host;a;;b",
        "sip:host?",
        "sip:us%zzer@host",
        "sip:host;x=%g1",
        "sip:host?a=%",
        "sip:ho$t",
        "<sip:a@b>",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


# -- start line -----------------------------------------------------------------------


def test_start_line_variants() -> None:
    lower = invite().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)
    assert parse_request(lower).method == "INVITE"  # SIP-Version is case-insensitive
    with pytest.raises(ParseError) as info:
        parse_message(invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    assert info.value.status == 505
    with pytest.raises(ParseError) as info:
        parse_message(invite().replace(b"sip:bob@example.com SIP", b"tel:+15550100 SIP", 1))
    assert info.value.status == 416
    with pytest.raises(ParseError) as info:
        parse_message(invite().replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1))
    assert info.value.status == 400
    assert ParseError("x").status == 400
    response = parse_message(
        invite().replace(b"INVITE sip:bob@example.com SIP/2.0", b"SIP/2.0 180 Ringing")
    )
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (180, "Ringing")
    for bad in (
        b"SIP/2.0 180",
        b"SIP/2.0 18 Ringing",
        b"SIP/2.0 700 Odd",
        b"SIP/2.0 2\xd9\xa0\xd9\xa0 OK",
    ):
        with pytest.raises(ParseError, match="bad status line"):
            parse_message(invite().replace(b"INVITE sip:bob@example.com SIP/2.0", bad))


def test_numbers_are_ascii_digits_only() -> None:
    # str.isdigit() takes "²" (then int() fails with a bare ValueError) and other
    # scripts' digits; none of them is a SIP number.
    for value in ("²", "٣", "３"):
        data = invite(length=False).replace(b"\r\n\r\n", f"\r\nl: {value}\r\n\r\n".encode())
        with pytest.raises(ParseError, match="bad Content-Length"):
            parse_message(data)
        with pytest.raises(ParseError, match="bad Content-Length"):
            StreamFramer().feed(data)
        assert parse_partial(data) is not None  # the 400 can still be sent
        data = invite().replace(b"Max-Forwards: 70", f"Max-Forwards: 7{value}".encode())
        with pytest.raises(ParseError, match="bad Max-Forwards"):
            parse_message(data)
        data = invite().replace(b"CSeq: 314159", f"CSeq: 31415{value}".encode())
        with pytest.raises(ParseError, match="bad CSeq"):
            parse_message(data)
        assert parse_partial(data) is None


# -- serialization ---------------------------------------------------------------------


def test_bytes_round_trip() -> None:
    original = invite(
        "Route: <sip:p1.example.com;lr>",
        'Subject: "quoted" and, commas',
        "X-Empty:",
        body=b"v=0\r\n",
    )
    first = parse_request(original)
    second = parse_request(bytes(first))
    assert second == first
    assert bytes(second) == bytes(first)
    # Compact and odd spellings serialize canonically, and mean the same again.
    odd = original.replace(b"Call-ID:", b"i  :").replace(b"Content-Length:", b"l:")
    assert parse_request(bytes(parse_request(odd))) == parse_request(odd)


def test_content_length_is_always_the_bodys() -> None:
    req = parse_request(invite(body=b"12345"))
    req.body = b"abc"
    again = parse_request(bytes(req))
    assert again.body == b"abc"
    assert again.headers.raw_values("Content-Length") == ["3"]
    built = Request(Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]), b"", "BYE")
    assert bytes(built).endswith(b"Content-Length: 0\r\n\r\n")


def test_response_to_copies_and_tags() -> None:
    req = parse_request(invite())
    answer = response_to(req, 180, "Ringing", to_tag="abc")
    assert answer.to.tag == "abc"
    assert answer.headers.raw_values("Via") == req.headers.raw_values("Via")
    assert (answer.call_id, answer.cseq, answer.from_) == (req.call_id, req.cseq, req.from_)
    # A tag already there is kept; a ";tag" inside the URI is no To tag.
    tagged = parse_request(invite().replace(b"<sip:bob@example.com>", b"<sip:b@c>;tag=x"))
    assert response_to(tagged, 200, "OK", to_tag="y").to.tag == "x"
    uri_tag = parse_request(invite().replace(b"<sip:bob@example.com>", b"<sip:b@c;tag=u>"))
    assert response_to(uri_tag, 200, "OK", to_tag="y").to.tag == "y"
    assert "tag" not in response_to(req, 100, "Trying", to_tag="z").to.params


# -- UDP and stream framing -------------------------------------------------------------


def test_datagram_body_and_content_length() -> None:
    data = invite(body=b"abc")
    assert parse_request(data + b"garbage").body == b"abc"  # RFC 3261 18.3
    with pytest.raises(ParseError, match="larger than the body"):
        parse_message(data[:-1])
    no_length = invite(body=b"xyz", length=False)
    assert parse_request(no_length).body == b"xyz"  # the rest of the datagram
    with pytest.raises(ParseError, match="missing Content-Length on a stream"):
        parse_message(no_length, stream=True)
    assert parse_request(b"\r\n\r\n" + data, stream=True).body == b"abc"
    lf_only = data.replace(b"\r\n", b"\n")  # tolerated in the head
    assert parse_request(lf_only).call_id == "a84b4c76e66710@pc33.example.com"


def test_framer_several_messages_in_one_chunk() -> None:
    one, two = invite(body=b"first"), invite(body=b"second!")
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + one + b"\r\n" + two + b"\r\n\r\n") == [one, two]
    assert framer.feed(b"") == []
    assert framer.feed(one) == [one]


def test_framer_message_split_over_chunks() -> None:
    data = invite(body=b"0123456789")
    framer = StreamFramer()
    out: list[bytes] = []
    for byte in data:
        out += framer.feed(bytes([byte]))
    assert out == [data]
    # Split right at the blank line and inside the body.
    framer = StreamFramer()
    end = data.index(b"\r\n\r\n")
    assert framer.feed(data[: end + 2]) == []
    assert framer.feed(data[end + 2 : end + 6]) == []
    assert framer.feed(data[end + 6 :]) == [data]


def test_framer_finds_content_length_anywhere() -> None:
    data = sip(
        "MESSAGE sip:a@b SIP/2.0",
        "l  :   4",  # compact, odd spacing, not last
        "Via: SIP/2.0/TCP h;branch=z9hG4bK1",
        "Content-Type: text/plain",
        body=b"ping",
    )
    assert StreamFramer().feed(data + data) == [data, data]
    folded = data.replace(b"l  :   4", b"Content-Length:\r\n 4")
    assert StreamFramer().feed(folded) == [folded]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (invite(body=b"x", length=False), "missing Content-Length"),
        (invite("Content-Length: 1", body=b"x"), "more than one Content-Length"),
        (invite(body=b"x").replace(b"Length: 1", b"Length: one"), "bad Content-Length"),
        (invite(body=b"x").replace(b"Length: 1", b"Length: 99999"), "too large"),
    ],
)
def test_framer_errors(data: bytes, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        StreamFramer().feed(data)


def test_framer_limits_an_endless_header() -> None:
    framer = StreamFramer()
    framer.feed(b"INVITE sip:a@b SIP/2.0\r\n")
    with pytest.raises(ParseError, match="too large"):
        for _ in range(2000):
            framer.feed(b"X-Filler: " + b"a" * 60 + b"\r\n")


# -- parse_partial ---------------------------------------------------------------------


def test_partial_finds_what_a_400_needs() -> None:
    broken = invite("Contact: <sip:unterminated").replace(b"SIP/2.0\r\n", b"SIP/2.0  \r\n", 1)
    with pytest.raises(ParseError):
        parse_message(broken)
    partial = parse_partial(broken)
    assert partial is not None
    assert (partial.method, partial.call_id, partial.cseq) == (
        "INVITE",
        "a84b4c76e66710@pc33.example.com",
        (314159, "INVITE"),
    )
    assert partial.top_via.branch == "z9hG4bK776asdhds"
    assert parse_partial(invite().replace(b"Call-ID", b"X-Call-ID")) is None
    assert parse_partial(invite().replace(b"From", b"X-From")) is None
    assert parse_partial(b"garbage") is None
    assert parse_partial(b"") is None


# -- fuzzing ---------------------------------------------------------------------------

SEEDS = [
    invite(body=b"v=0\r\n"),
    *(path.read_bytes() for path in sorted(TORTURE.glob("*.dat"))),
]


def _exercise(data: bytes) -> None:
    """Parsing, framing and partial parsing of anything: ParseError or a result."""
    for stream in (False, True):
        try:
            message = parse_message(data, stream=stream)
        except ParseError:
            pass
        else:
            # What parses serializes to something that parses to the same thing.
            again = parse_message(bytes(message), stream=True)
            assert again.body == message.body
            assert again.call_id == message.call_id and again.vias == message.vias
    partial = parse_partial(data)
    assert partial is None or isinstance(partial, Request)
    try:
        for framed in StreamFramer().feed(data):
            assert framed in data
    except ParseError:
        pass


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "splice"]))
        chunk = draw(
            st.one_of(
                st.binary(max_size=4),
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\r",
                        b"\n",
                        b" ",
                        b"\t",
                        b":",
                        b";",
                        b",",
                        b'"',
                        b"\\",
                        b"<",
                        b">",
                        b"%",
                        b"%0",
                        b"@",
                        b"\x00",
                        b"\xff",
                        b"\r\n ",
                        b"\xc2\xb2",
                        b"9" * 12,
                    ]
                ),
            )
        )
        if action == "insert":
            data[at:at] = chunk
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "replace":
            data[at : at + len(chunk)] = chunk
        else:
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 80))]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _exercise(data)
    _exercise(b"INVITE sip:a@b SIP/2.0\r\n" + data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_messages(data: bytes) -> None:
    _exercise(data)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x3000), max_size=40)
)
def test_fuzz_header_values(value: str) -> None:
    """Arbitrary text in the fields the parser interprets."""
    for field in ("To", "From", "Contact", "Via", "CSeq", "Call-ID", "Max-Forwards", "Route"):
        data = invite(f"X-Pad: {value}").replace(b"X-Pad", field.encode(), 1)
        _exercise(data)
    _exercise(invite().replace(b"sip:bob@example.com SIP", value.encode() + b" SIP", 1))


def test_fuzz_seeds_include_good_messages() -> None:
    # The mutations start from messages that parse, so they reach deep into the parser.
    good = 0
    for seed in SEEDS:
        try:
            parse_message(seed)
            good += 1
        except ParseError:
            pass
    assert good >= 25


def test_framer_leaves_other_errors_to_the_parser() -> None:
    # A bare CR is no framing problem: the message is framed, then refused with a 400.
    data = invite("Subject: a\rb")
    (framed,) = StreamFramer().feed(data)
    with pytest.raises(ParseError, match="bare CR"):
        parse_message(framed, stream=True)
    assert parse_partial(framed) is None  # nor answered: the CR may end a line elsewhere
