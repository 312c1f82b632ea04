"""RFC 4475 torture messages (tests/sip/torture/, see its README) against the parser.

Valid messages must parse to the values the RFC points out. Invalid ones must raise
ParseError with the status a UAS answers, and parse_partial must still find enough to
send that answer, or give up (None) without raising. Where the RFC leaves the choice
to the element (reject or be liberal) the choice Veil makes is stated at the test.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from veil.sip.errors import ParseError
from veil.sip.grammar import parse_params, unescape
from veil.sip.message import (
    Request,
    Response,
    StreamFramer,
    parse_message,
    parse_partial,
    reason_for,
    response_to,
)

TORTURE = Path(__file__).parent / "torture"
SDP_END = b"a=rtpmap:31 LPC\r\n"

VALID_3_1_1 = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
]
INVALID_3_1_2 = [
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
]
APPLICATION_3_3 = [
    "insuf",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "multi01",
    "mcl01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
]
OTHER = ["badbranch", "inv2543"]  # 3.2 and 3.4
# The messages that parse_message accepts, all sections together.
ACCEPTED = [
    *VALID_3_1_1,
    "baddate",
    "badbranch",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
]

# SHA-256 of the archive members of RFC 4475 Appendix A, from an independent decode.
ARCHIVE_SHA256 = {
    "wsinv": "d6f6cdee99cd0a1f8e3d9a0fdd67c877700e19ab86d8186dada06f61260e3e61",
    "intmeth": "b957a8292c1c0a9851fe94705b90f94320738f43aacde64998e401f742ef688d",
    "esc01": "be3a316d4ce5f69cad474646191e390dd4b50fc8371e44b5197fe1237781973e",
    "escnull": "263fe2ecd12a5ccbb6c67b3174e9211d11da9b600e7d69666a86d2ee42873e90",
    "esc02": "9a9c59449f00327b02071feafc8e5c2a261c98c818044167894cc17809a12199",
    "lwsdisp": "d1b36b6316c12824f6f04bf6b1fd1f021cade9b74871693b9c3474cd9fa7f4e6",
    "longreq": "185739292bc676760e5b1cca77c87705aa570240171c506ad76f8c35af0ecdaa",
    "dblreq": "a6be48426565c2a705389c4ce2ea17e57b891cb13f80490a2cb9392c797b46ef",
    "semiuri": "87bbaed6b4b354dbd3c5c7a20e66686303c63e43a0aa19b89de1ac75231611a2",
    "transports": "33b4553a3b9418121b099ff07882535151edd6a1e81898c63a916aad2cbf90bc",
    "mpart01": "92147c8e24997bac59629e1b163767697d0d6d499af87f89e325d69968bec3ba",
    "unreason": "4f939d6ebf4817eea70f011d3209e83732872ffc20ffd304b244084dc392f4d7",
    "noreason": "07e11e470a69fffa3674de805e5165d1351a9439a91045ee70c9570ea24ab4fe",
}


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def request(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def response(name: str) -> Response:
    message = parse_message(load(name))
    assert isinstance(message, Response)
    return message


def test_fixtures_are_the_archive_bytes() -> None:
    names = {path.stem for path in TORTURE.glob("*.dat")}
    assert names == {*VALID_3_1_1, *INVALID_3_1_2, *APPLICATION_3_3, *OTHER}
    assert len(names) == 49
    for name, digest in ARCHIVE_SHA256.items():
        assert hashlib.sha256(load(name)).hexdigest() == digest, name
    # Every line of every head ends in CRLF: nothing converted them.
    for name in names:
        head = load(name).split(b"\r\n\r\n")[0]
        assert b"\n" not in head.replace(b"\r\n", b""), name


# -- 3.1.1 valid messages ------------------------------------------------------------


def test_wsinv_short_tortuous_invite() -> None:
    req = request("wsinv")
    assert req.method == "INVITE"
    assert (req.uri.user, req.uri.host) == ("vivekg", "chair-dnrc.example.com")
    assert req.uri.params == {"unknownparam": None}  # a URI parameter with no value
    # Folded, with LWS around ':' ';' and '='.
    assert req.to.display is None
    assert str(req.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert req.to.tag == "1918181833n"
    # quoted-pairs: "J Rosenberg \\\"" is J Rosenberg \"
    assert req.from_.display == 'J Rosenberg \\"'
    assert str(req.from_.uri) == "sip:jdrosen@example.com"
    assert req.from_.tag == "98asjd8"
    assert req.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert req.cseq == (9, "INVITE")  # leading zeros, folded
    assert req.headers.get("max-forwards") == "0068"
    assert int(req.headers.get("Max-Forwards") or "") == 68
    # Three Vias: one folded field and one compact field holding two values.
    vias = req.vias
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", None, "390skdjuw"),
        ("TCP", "spindle.example.com", None, "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", None, "z9hG4bK30239"),
    ]
    assert req.top_via == vias[0]
    assert req.headers.get("Subject") == ""  # "s :" is an empty subject
    assert "Subject" in req.headers
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert req.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = req.addresses("Route")
    assert route.uri.host == "services.example.com"
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    contact = req.contact
    assert contact is not None
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert req.headers.get("Content-Type") == "application/sdp"
    assert len(req.body) == 150
    assert req.body.startswith(b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n")
    assert req.body.endswith(SDP_END)


def test_intmeth_wide_range_of_valid_characters() -> None:
    req = request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert req.method == method  # '%' is no escape in a method
    assert req.cseq == (139122385, method)
    # The userinfo holds ';', '?', ',' and '/': it ends at the '@', not at the first ';'.
    assert req.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert req.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert (req.uri.host, req.uri.params, req.uri.headers) == ("example.com", {}, "")
    assert req.top_via.transport == "TCP"
    assert req.top_via.branch == "z9hG4bK-.!%66*_+`'~"  # not unescaped
    # quoted-pairs for BEL, NUL and DEL.
    assert req.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    # A display name of several tokens, an unknown parameter with a UTF-8 value.
    assert req.from_.display == "token1~` token2'+_ token3*%!.-"
    assert req.from_.params == {
        "fromparam''~+*_!.-%": '"работающий"',
        "tag": "_token~1'+`*%!-.",
    }
    assert req.from_.tag == "_token~1'+`*%!-."
    # In a Call-ID, '%' '"' '<' '>' '\' are plain characters.
    assert req.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert req.headers.get("Max-Forwards") == "255"
    assert req.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert req.body == b""


def test_esc01_valid_escaping() -> None:
    req = request("esc01")
    assert req.uri.user == "sips%3Auser%40example.com"
    assert req.uri.user_unescaped == "sips:user@example.com"  # a user, not a sips URI
    assert req.uri.host == "example.net"
    assert req.to.uri.user_unescaped == "user"
    assert req.from_.uri.user_unescaped == "I have spaces"
    assert req.from_.tag == "938"
    assert req.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i"
    assert req.headers.get("Content-Type") == "application/sdp"  # compact "C"
    contact = req.contact
    assert contact is not None
    assert contact.uri.user_unescaped == "caller"
    # ";%6C%72" is ";lr"; the value unescapes once, to "value%41".
    assert contact.uri.unescaped_params == {"lr": None, "name": "value%41"}
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    assert len(req.body) == 150


def test_escnull_escaped_nulls() -> None:
    req = request("escnull")
    assert req.method == "REGISTER"
    assert req.to.uri.user_unescaped == "null-\x00-null"
    assert req.from_.uri.user_unescaped == "null-\x00-null"
    assert req.from_.tag == "839923423"
    contacts = req.addresses("Contact")
    assert [c.uri.user_unescaped for c in contacts] == ["\x00", "\x00\x00"]
    assert contacts[0] != contacts[1]
    assert req.body == b""  # "L:0"


def test_esc02_percent_that_is_not_an_escape() -> None:
    req = request("esc02")
    assert req.method == "RE%47IST%45R"  # an unknown method, not REGISTER
    assert req.method != "REGISTER"
    assert req.cseq == (29344, "RE%47IST%45R")
    assert req.to.display == "%Z%45"
    assert req.from_.display == "%Z%45"
    assert req.top_via.branch == "z9hG4bK209%fzsnel234"
    # Two Contacts: "C%6Fntact" is another (unknown) header field.
    assert [c.uri.user for c in req.addresses("Contact")] == ["alias1", "alias3"]
    assert req.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_no_lws_between_display_name_and_laquot() -> None:
    req = request("lwsdisp")
    assert req.from_.display == "caller"
    assert str(req.from_.uri) == "sip:caller@example.com"
    assert req.from_.tag == "323"


def test_longreq_long_values() -> None:
    req = request("longreq")
    assert req.to.display == "I have a user name of " + "extreme" * 10 + " proportion"
    assert (req.to.uri.user, req.to.uri.port) == ("user", 6000)
    assert req.to.uri.params == {
        "unknownparam1": "very" + "long" * 20 + "value",
        "longparam" + "name" * 25: "shortvalue",
        "very" + "long" * 25 + "parameternamewithnovalue": None,
    }
    caller = "amazinglylongcallername" * 5
    assert req.from_.uri.user == caller  # compact "F"
    assert req.from_.params == {
        "tag": "12" + "982" * 50 + "424",
        "unknownheaderparam" + "name" * 20: "unknowheaderparam" + "value" * 15,
        "unknownvalueless" + "paramname" * 10: None,
    }
    assert req.call_id == "longreq.one" + "really" * 20 + "longcallid"
    assert req.headers.get("Unknown-" + "Long" * 20 + "-Name") == (
        f"unknown-{'long' * 20}-value; unknown-{'long' * 20}-parameter-name = "
        f"unknown-{'long' * 20}-parameter-value"
    )
    # 34 Vias in 34 fields, with every spelling of the name.
    vias = req.vias
    assert [v.host for v in vias] == [
        *(f"sip{n}.example.com" for n in range(33, 0, -1)),
        "host.example.com",
    ]
    assert {v.transport for v in vias} == {"TCP"}
    assert vias[-1].params == {
        "received": "192.0.2.5",
        "branch": "very" + "long" * 50 + "branchvalue",
    }
    contact = req.contact
    assert contact is not None and contact.uri.user == caller
    assert len(req.body) == 150  # compact "l"


def test_dblreq_only_the_first_request_of_a_datagram() -> None:
    data = load("dblreq")
    req = request("dblreq")
    assert req.method == "REGISTER"
    assert req.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact "I"
    assert req.body == b""  # Content-Length: 0; the INVITE after it is ignored
    assert b"INVITE" in data
    contact = req.contact
    assert contact is not None and str(contact.uri) == "sip:j.user@host.example.com"
    # On a stream the REGISTER frames alone. The INVITE's Content-Length is 3 octets
    # short of its SDP, which leaves "C\r\n\r\n" where the next message should
    # start: a stream like that cannot be framed any further.
    framer = StreamFramer()
    end = data.index(b"\r\n\r\n") + 4
    (first,) = framer.feed(data[:end])
    assert parse_message(first, stream=True) == req
    with pytest.raises(ParseError, match="missing Content-Length"):
        framer.feed(data[end:])


def test_semiuri_semicolons_in_the_user_part() -> None:
    req = request("semiuri")
    assert req.uri.user == "user;par=u%40example.net"
    assert req.uri.user_unescaped == "user;par=u@example.net"
    assert (req.uri.host, req.uri.params) == ("example.com", {})
    assert req.headers.values("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_varied_and_unknown() -> None:
    req = request("transports")
    assert [(v.transport, v.host) for v in req.vias] == [
        ("UDP", "t1.example.com"),
        ("SCTP", "t2.example.com"),
        ("TLS", "t3.example.com"),
        ("UNKNOWN", "t4.example.com"),
        ("TCP", "t5.example.com"),
    ]
    assert req.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_multipart_body_kept_exactly() -> None:
    data = load("mpart01")
    req = request("mpart01")
    assert req.method == "MESSAGE"
    assert req.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert len(req.body) == 553 == int(req.headers.get("Content-Length") or "")
    # The binary part holds NUL, bare LF and bare CR octets.
    assert b"\x00" in req.body
    assert re.search(rb"[^\r]\n", req.body) and re.search(rb"\r[^\n]", req.body)
    content_type, _, params = (req.headers.get("Content-Type") or "").partition(";")
    assert content_type == "multipart/mixed"
    boundary = parse_params(params)["boundary"]
    assert boundary == "7a9cbec02ceef655"
    parts = req.body.split(b"--" + boundary.encode())
    assert len(parts) == 4 and parts[0] == b"" and parts[3] == b"--\r\n"
    assert parts[1].endswith(b"\r\n\r\nHello\r\n")
    assert req.top_via.params == {
        "branch": "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-",
        "rport": None,
    }
    assert (req.headers.get("Identity") or "").endswith("hkMWYUA=")
    # Every field is in canonical form already, so it serializes to the same bytes.
    assert bytes(req) == data


def test_unreason_utf8_reason_phrase() -> None:
    res = response("unreason")
    assert res.status == 200
    assert res.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(res.body) == 154
    assert bytes(res) == load("unreason")


def test_noreason_empty_reason_phrase() -> None:
    res = response("noreason")
    assert (res.status, res.reason) == (100, "")
    assert res.call_id == "noreason.asndj203insdf99223ndf"
    assert bytes(res) == load("noreason")


# -- 3.1.2 invalid messages -------------------------------------------------------------

# name: (what the error says, the status a UAS answers). Responses are discarded.
REJECTED = {
    "badinv01": ("empty", 400),  # ";;,;,," in Via, ";;;;" after a Contact
    "clerr": ("Content-Length larger than the body", 400),
    "ncl": ("bad Content-Length '-999'", 400),
    "scalar02": ("CSeq number out of range", 400),  # the RFC's reason for the 400
    "scalarlg": ("CSeq number out of range", 400),  # a response: discarded
    "quotbal": ("unterminated quoted string", 400),
    "ltgtruri": ("not a URI", 400),
    "lwsruri": ("bad request line", 400),
    "lwsstart": ("bad request line", 400),
    "trws": ("bad request line", 400),
    # The RFC allows ignoring the escaped headers instead; a B2BUA has no use for them.
    "escruri": ("headers in the Request-URI", 400),
    "regbadct": ("must use <>", 400),
    # Liberal elements may ignore the spaces; guessing at a URI is not worth it.
    "badaspec": ("whitespace inside <>", 400),
    "badvers": ("unsupported version 'SIP/7.0'", 505),
    "mismatch01": ("CSeq method does not match", 400),
    "mismatch02": ("CSeq method does not match", 400),  # 501 would also do
    "bigcode": ("bad status line", 400),  # a response: discarded
    # 3.3: rejected before the application sees them.
    "insuf": ("missing Call-ID", 400),
    "unkscm": ("unsupported URI scheme 'nobodyKnowsThisScheme'", 416),
    "novelsc": ("unsupported URI scheme 'soap.beep'", 416),
    # To: isbn:, From: http:, Contact: name:. A registrar answers 400 (To must be a
    # SIP AOR); Veil is no proxy and reads From/To/Contact as SIP URIs, so it does too.
    "unksm2": ("unsupported URI scheme 'http'", 400),
    "multi01": ("more than one call-id header", 400),
    "mcl01": ("more than one content-length header", 400),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected(name: str) -> None:
    match, status = REJECTED[name]
    with pytest.raises(ParseError, match=match) as info:
        parse_message(load(name))
    assert info.value.status == status
    # The same verdict on a stream, where the message is framed first.
    if name not in ("clerr", "ncl", "mcl01"):  # framing errors: see their own tests
        (framed,) = StreamFramer().feed(load(name) + b"\r\n" * 3)
        with pytest.raises(ParseError, match=match):
            parse_message(framed, stream=True)


def test_baddn_unquoted_display_names_with_non_token_characters() -> None:
    data = load("baddn")
    # As archived the message also lacks the empty line after its headers.
    with pytest.raises(ParseError, match="no blank line"):
        parse_message(data)
    with pytest.raises(ParseError, match="bad display name 'Bell, Alexander'") as info:
        parse_message(data + b"\r\n")
    assert info.value.status == 400


def test_baddate_is_accepted_and_date_left_alone() -> None:
    # RFC 4475 3.1.2.12 allows ignoring a Date that is not going to be used: Veil never
    # reads Date, so a non-GMT zone is no reason to refuse a call.
    req = request("baddate")
    assert req.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    assert req.call_id == "baddate.239423mnsadf3j23lj42--sedfnm234"


# parse_partial on every refused request: the Call-ID and top Via host of the 400 (or
# other) answer, or None where no answer can be addressed or built.
PARTIAL = {
    "badinv01": None,  # its top Via is itself malformed: nowhere sure to answer
    "clerr": ("clerr.0ha0isndaksdjweiafasdk3", "host5.example.com"),
    "ncl": ("ncl.0ha0isndaksdj2193423r542w35", "192.0.2.53"),
    "scalar02": None,  # the CSeq a response must echo is unreadable
    "quotbal": ("quotbal.aksdj", "192.0.2.59"),
    "ltgtruri": ("ltgtruri.1@192.0.2.5", "192.0.2.5"),
    "lwsruri": ("lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423", "192.0.2.1"),
    "lwsstart": ("lwsstart.dfknq234oi243099adsdfnawe3@example.com", "host1.example.com"),
    "trws": ("trws.oicu34958239neffasdhr2345r", "host1.examle.com"),
    "escruri": (
        "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5",
        "host-of-the-hour.example.com",
    ),
    "regbadct": ("regbadct.k345asrl3fdbv@10.0.0.1", "135.180.130.133"),
    "badaspec": ("badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3", "host4.example.com"),
    "baddn": ("baddn.31415@c.example.com", "c.example.com"),  # no empty line either
    "badvers": None,  # its Via is "SIP/7.0/UDP": not one we can read
    "mismatch01": ("mismatch01.dj0234sxdfl3", "host.example.com"),
    "mismatch02": ("mismatch02.dj0234sxdfl3", "host.example.net"),
    "insuf": None,  # no Call-ID, From or To to echo
    "unkscm": ("unkscm.nasdfasser0q239nwsdfasdkl34", "host9.example.com"),
    "novelsc": ("novelsc.asdfasser0q239nwsdfasdkl34", "host9.example.com"),
    "unksm2": ("unksm2.daksdj@hyphenated-host.example.com", "192.0.2.21"),
    "multi01": ("multi01.98asdh@192.0.2.1", "192.0.2.25"),  # the first of each
    "mcl01": ("mcl01.fhn2323orihawfdoa3o4r52o3irsdf", "host5.example.net"),
}


@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_partial_for_refused_requests(name: str) -> None:
    data = load(name)
    with pytest.raises(ParseError) as info:
        parse_message(data)
    partial = parse_partial(data)
    expected = PARTIAL[name]
    if expected is None:
        assert partial is None
        return
    assert partial is not None
    assert (partial.call_id, partial.top_via.host) == expected
    answer = response_to(partial, info.value.status, reason_for(info.value.status))
    # The answer echoes what the client matches its transaction on, byte for byte.
    for field in ("Via", "Call-ID", "CSeq", "From"):
        assert answer.headers.raw_values(field)[:1] == partial.headers.raw_values(field)[:1]
    assert answer.headers.get("To", "").startswith(partial.headers.get("To") or "")
    assert bytes(answer).startswith(f"SIP/2.0 {info.value.status} ".encode())


def test_partial_never_for_responses() -> None:
    for name in ("scalarlg", "bigcode", "unreason", "noreason", "bcast"):
        assert parse_partial(load(name)) is None


def test_stream_framing_errors() -> None:
    # clerr on a stream is not an error yet: the framer waits for 9999 octets.
    assert StreamFramer().feed(load("clerr")) == []
    # A negative or doubled Content-Length cannot frame a stream: the connection dies.
    with pytest.raises(ParseError, match="bad Content-Length '-999'"):
        StreamFramer().feed(load("ncl"))
    with pytest.raises(ParseError, match="more than one Content-Length"):
        StreamFramer().feed(load("mcl01"))


# -- 3.2, 3.3 and 3.4: messages the parser accepts ---------------------------------------


def test_badbranch_bare_magic_cookie_is_visible() -> None:
    # Syntactically fine; the transaction layer decides (RFC 4475 3.2.1).
    assert request("badbranch").top_via.branch == "z9hG4bK"


def test_unkscm_and_novelsc_answer_416() -> None:
    for name in ("unkscm", "novelsc"):
        with pytest.raises(ParseError) as info:
            parse_message(load(name))
        partial = parse_partial(load(name))
        assert partial is not None
        answer = response_to(partial, info.value.status, reason_for(info.value.status))
        assert (answer.status, answer.reason) == (416, "Unsupported URI Scheme")


def test_bext01_unknown_extensions_get_420() -> None:
    req = request("bext01")
    supported: set[str] = set()  # Veil requires no extension of its peers
    unsupported = [opt for opt in req.headers.values("Require") if opt not in supported]
    assert unsupported == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert req.headers.values("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]
    answer = response_to(req, 420, reason_for(420), to_tag="t1")
    answer.headers.add("Unsupported", ", ".join(unsupported))
    parsed = parse_message(bytes(answer))
    assert isinstance(parsed, Response) and parsed.status == 420
    assert parsed.headers.values("Unsupported") == unsupported
    assert parsed.to.tag == "t1" and parsed.top_via.transport == "TLS"


def test_invut_unknown_content_type_gets_415() -> None:
    req = request("invut")
    assert req.headers.get("Content-Type") == "application/unknownformat"
    assert req.body == b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n'
    assert len(req.body) == 40
    answer = response_to(req, 415, reason_for(415), to_tag="t2")
    answer.headers.add("Accept", "application/sdp")
    parsed = parse_message(bytes(answer))
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.headers.values("Accept")) == (415, ["application/sdp"])


def test_regaut01_unknown_authorization_scheme_kept_whole() -> None:
    req = request("regaut01")
    value = "NoOneKnowsThisScheme opaque-data=here"
    assert req.headers.get("Authorization") == value
    assert req.headers.values("Authorization") == [value]  # never comma-split
    assert req.body == b""  # "Content-Length:0"


def test_bcast_response_with_a_broadcast_via() -> None:
    res = response("bcast")
    assert [v.host for v in res.vias] == ["192.0.2.198", "255.255.255.255"]
    assert res.top_via.branch == "z9hG4bK1324923"
    assert res.contact is not None and res.contact.uri.host == "host28.example.com"


def test_zeromf_max_forwards_zero() -> None:
    req = request("zeromf")
    assert req.method == "OPTIONS"
    assert req.headers.get("Max-Forwards") == "0"  # 483 for anything but OPTIONS


def test_cparam01_addr_spec_params_belong_to_the_header() -> None:
    contact = request("cparam01").contact
    assert contact is not None
    assert contact.uri.user == "+19725552222" and contact.uri.params == {}
    assert contact.params == {"unknownparam": None}


def test_cparam02_name_addr_params_belong_to_the_uri() -> None:
    contact = request("cparam02").contact
    assert contact is not None
    assert contact.uri.params == {"unknownparam": None}
    assert contact.params == {}


def test_regescrt_escaped_header_in_a_contact_uri() -> None:
    req = request("regescrt")
    contact = req.contact  # compact "M"
    assert contact is not None
    assert contact.uri.headers == "Route=%3Csip:sip.example.com%3E"
    assert unescape(contact.uri.headers) == "Route=<sip:sip.example.com>"
    assert str(contact) == "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"


def test_sdp01_accept_without_sdp() -> None:
    req = request("sdp01")
    assert req.headers.values("Accept") == ["text/nobodyKnowsThis"]
    assert "application/sdp" not in req.headers.values("Accept")  # so no SDP answer
    assert req.headers.get("Content-Type") == "application/sdp"


def test_inv2543_rfc2543_syntax() -> None:
    data = load("inv2543")
    req = request("inv2543")
    assert req.top_via.branch is None
    assert req.top_via.port is None
    assert req.from_.tag is None
    assert req.from_.uri.params == {"user": "phone"}
    # An addr-spec: ";user=phone" is a To parameter here, not a URI parameter.
    assert req.to.params == {"user": "phone"} and req.to.uri.params == {}
    assert "Max-Forwards" not in req.headers
    assert "Content-Length" not in req.headers
    # No Content-Length: the body is the rest of the datagram.
    assert req.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert req.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    (record_route,) = req.addresses("Record-Route")
    assert record_route.uri.params == {"maddr": "ss1.example.com"}


# -- every accepted message ------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_round_trip(name: str) -> None:
    message = parse_message(load(name))
    again = parse_message(bytes(message))
    expected = message.headers.copy()
    if "Content-Length" not in expected:
        expected.add("Content-Length", str(len(message.body)))
    assert again.headers == expected
    assert again.body == message.body
    if isinstance(message, Request):
        assert isinstance(again, Request)
        assert (again.method, again.uri) == (message.method, message.uri)
    else:
        assert isinstance(again, Response)
        assert (again.status, again.reason) == (message.status, message.reason)
    assert again.vias == message.vias
    assert (again.from_, again.to) == (message.from_, message.to)


# inv2543 has no Content-Length; dblreq cannot be framed (see its test).
@pytest.mark.parametrize("name", [n for n in ACCEPTED if n not in ("inv2543", "dblreq")])
def test_accepted_framed_in_small_chunks(name: str) -> None:
    data = load(name)
    framer = StreamFramer()
    framed: list[bytes] = []
    for i in range(0, len(data), 7):
        framed += framer.feed(data[i : i + 7])
    assert framed[0] == data[: len(framed[0])]
    assert parse_message(framed[0], stream=True) == parse_message(data)
