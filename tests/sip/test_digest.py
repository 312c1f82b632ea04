"""SIP digest client (veil.sip.digest): published RFC vectors, a cross-check against
httpx's independent implementation, and the challenge parsing real trunks need."""

from __future__ import annotations

import hashlib
import re
from urllib.request import parse_http_list, parse_keqv_list

import httpx
import pytest

from veil.sip.digest import Challenge, authorization, parse_challenge, pick_challenge, supported
from veil.sip.errors import ParseError

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def rfc7616_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


def fields(value: str) -> dict[str, str]:
    """An Authorization value read by the standard library's parser, not ours."""
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    return parse_keqv_list(parse_http_list(rest))


def md5(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.md5(data).hexdigest()


# --- published vectors ----------------------------------------------------------------


def test_rfc2617_section_3_5_example() -> None:
    challenge = parse_challenge(RFC2617_CHALLENGE)
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, response: str) -> None:
    challenge = parse_challenge(rfc7616_challenge(algorithm))
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert fields(value) == {
        "username": "Mufasa",
        "realm": "http-auth@example.org",
        "nonce": RFC7616_NONCE,
        "uri": "/dir/index.html",
        "response": response,
        "algorithm": algorithm,
        "cnonce": RFC7616_CNONCE,
        "qop": "auth",
        "nc": "00000001",
        "opaque": RFC7616_OPAQUE,
    }


def test_rfc7616_section_3_9_2_sha512_256_userhash_with_erratum_4897() -> None:
    # The RFC's printed hashes came from a pre-standard SHA-512/256; erratum 4897 corrects
    # them. Checks both the truncated-SHA-512 variant and username hashing.
    challenge = parse_challenge(
        'Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, '
        'nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
        'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true'
    )
    assert challenge.userhash
    value = authorization(
        challenge,
        method="GET",
        uri="/doe.json",
        username="J\u00e4s\u00f8n Doe",
        password="Secret, or not?",
        cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    )
    got = fields(value)
    assert got["username"] == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert got["response"] == "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    assert got["algorithm"] == "SHA-512-256"
    assert got["userhash"] == "true"
    assert ", userhash=true" in value


def test_rfc2069_compatibility_without_qop() -> None:
    # RFC 2069 2.4 example; the printed response is wrong, the errata value is this one.
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ()
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="CircleOfLife",
        cnonce="ignored",
    )
    got = fields(value)
    assert got["response"] == "1949323746fe6a43ef61f9606e7febea"
    assert not {"qop", "nc", "cnonce"} & got.keys()
    assert got["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


# --- cross-check against httpx ---------------------------------------------------------


def httpx_authorization(challenge: str, cnonce: str, monkeypatch: pytest.MonkeyPatch) -> str:
    auth = httpx.DigestAuth("alice", 's3cr3t, "quoted"')
    monkeypatch.setattr(auth, "_get_client_nonce", lambda nc, nonce: cnonce.encode())
    request = httpx.Request("INVITE", "https://trunk.example/sip:+15550100@trunk.example")
    flow = auth.auth_flow(request)
    next(flow)
    challenged = httpx.Response(401, headers={"WWW-Authenticate": challenge}, request=request)
    return flow.send(challenged).headers["Authorization"]


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", None])
def test_matches_httpx(algorithm: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    params = 'realm="trunk.example", nonce="6a3f/Zz+09==", opaque="op-42"'
    if algorithm is not None:
        params += f', algorithm={algorithm}, qop="auth"'
    challenge = "Digest " + params
    theirs = fields(httpx_authorization(challenge, "c0ffee00", monkeypatch))
    ours = fields(
        authorization(
            parse_challenge(challenge),
            method="INVITE",
            uri="/sip:+15550100@trunk.example",
            username="alice",
            password='s3cr3t, "quoted"',
            cnonce="c0ffee00",
        )
    )
    assert ours["response"] == theirs["response"]
    if algorithm is None:
        # httpx always names an algorithm; the no-qop exchange is RFC 2069's MD5 either way
        assert theirs.pop("algorithm") == ours.pop("algorithm") == "MD5"
    else:
        assert ours.pop("algorithm").upper() == theirs.pop("algorithm").upper()
    assert ours == theirs


# --- parsing --------------------------------------------------------------------------


def test_parse_asterisk_compact() -> None:
    assert parse_challenge('Digest realm="asterisk",nonce="1a2b",algorithm=MD5') == Challenge(
        realm="asterisk", nonce="1a2b", algorithm="MD5"
    )


def test_parse_asterisk_pjsip() -> None:
    challenge = parse_challenge(
        'Digest realm="asterisk",nonce="1712345678/6c0ba6e4b5f09d2c",'
        'opaque="4b1f7c2b3a6d5e11",algorithm=md5,qop="auth"'
    )
    assert challenge == Challenge(
        realm="asterisk",
        nonce="1712345678/6c0ba6e4b5f09d2c",
        algorithm="MD5",
        qop=("auth",),
        opaque="4b1f7c2b3a6d5e11",
    )


def test_parse_kamailio_stale() -> None:
    challenge = parse_challenge(
        'Digest realm="sip.example.net", nonce="ZmR2Y2FhZGI0NDFlMTNlYzM1", qop="auth", stale=TRUE'
    )
    assert challenge.stale
    assert challenge.algorithm == "MD5"
    assert challenge.qop == ("auth",)
    assert not parse_challenge('Digest realm="r", nonce="n", stale=false').stale


def test_parse_freeswitch() -> None:
    challenge = parse_challenge(
        'Digest realm="10.0.0.5", nonce="2fd0b7b4-9c8e-4d2e-b6a8-5a0a2f1c2b3d", '
        'algorithm=MD5, qop="auth"'
    )
    assert challenge.realm == "10.0.0.5"
    assert challenge.nonce == "2fd0b7b4-9c8e-4d2e-b6a8-5a0a2f1c2b3d"


def test_parse_spaces_around_equals_and_commas() -> None:
    challenge = parse_challenge(
        'Digest  realm = "r" ,nonce\t=\t"n" , algorithm = SHA-256 , qop = "auth,auth-int"'
    )
    assert challenge == Challenge(
        realm="r", nonce="n", algorithm="SHA-256", qop=("auth", "auth-int")
    )


def test_parse_qop_list_with_spaces_and_case() -> None:
    assert parse_challenge('Digest realm="r", nonce="n", qop=" Auth , AUTH-INT "').qop == (
        "auth",
        "auth-int",
    )
    assert parse_challenge('Digest realm="r", nonce="n", qop=auth').qop == ("auth",)


def test_parse_escaped_quotes_and_commas_in_values() -> None:
    challenge = parse_challenge(
        r'Digest realm="Acme \"PBX\", Floor 2", nonce="a,b=c", opaque="back\\slash", '
        'algorithm="sha-256"'
    )
    assert challenge.realm == 'Acme "PBX", Floor 2'
    assert challenge.nonce == "a,b=c"
    assert challenge.opaque == "back\\slash"
    assert challenge.algorithm == "SHA-256"


def test_parse_is_case_insensitive_and_ignores_unknown_parameters() -> None:
    challenge = parse_challenge(
        'DIGEST Realm="r", NONCE="n", domain="sip:a.example sip:b.example", charset=UTF-8, '
        "Algorithm=sha-512-256-sess, qop=auth, x-vendor=1, UserHash=TRUE"
    )
    assert challenge == Challenge(
        realm="r", nonce="n", algorithm="SHA-512-256-SESS", qop=("auth",), userhash=True
    )


def test_parse_unquoted_base64_nonce_and_empty_list_elements() -> None:
    challenge = parse_challenge('Digest realm="r",, nonce=dGVzdA==/x+y ,, ')
    assert challenge.nonce == "dGVzdA==/x+y"


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="trunk"',
        'Digest realm="r"',
        'Digest nonce="n"',
        "Digest",
        "",
        'Digestrealm="r", nonce="n"',
        'Digest realm="r", nonce="n',
        'Digest realm="r", nonce="n", realm="other"',
        'Digest realm="r" nonce="n"',
        'Digest realm="r", nonce=',
        'Digest realm="r", nonce="n", ="x"',
        'Digest realm="r", nonce="n", stale',
    ],
)
def test_parse_errors(value: str) -> None:
    with pytest.raises(ParseError):
        parse_challenge(value)


# --- choosing a challenge -------------------------------------------------------------


def test_pick_follows_server_order() -> None:
    # RFC 8760 2.4: the topmost supported header field, whatever its strength.
    sha = 'Digest realm="r", nonce="1", algorithm=SHA-256, qop="auth"'
    md5_ = 'Digest realm="r", nonce="2", algorithm=MD5, qop="auth"'
    assert pick_challenge([sha, md5_]) == parse_challenge(sha)
    assert pick_challenge([md5_, sha]) == parse_challenge(md5_)


def test_pick_skips_what_cannot_be_answered() -> None:
    usable = 'Digest realm="r", nonce="ok", algorithm=SHA-512-256, qop="auth"'
    values = [
        'Basic realm="r"',
        'Digest realm="r", nonce="a", algorithm=AKAv1-MD5, qop="auth"',
        'Digest realm="r", nonce="b", algorithm=SHA-512, qop="auth"',
        'Digest realm="r", nonce="c", qop="auth-conf"',
        'Digest realm="r", nonce="d", algorithm=MD5-sess',
        'Digest realm="r", nonce="e" garbage',
        usable,
    ]
    assert pick_challenge(values) == parse_challenge(usable)


def test_pick_none() -> None:
    assert pick_challenge([]) is None
    assert pick_challenge(['Basic realm="r"', 'Digest realm="r", nonce="n", algorithm=SHA-1']) is (
        None
    )


# --- building the answer --------------------------------------------------------------


def test_auth_preferred_over_auth_int() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int,auth"')
    one = authorization(
        challenge, method="INVITE", uri="sip:b@h", username="u", password="p", cnonce="c"
    )
    two = authorization(
        challenge,
        method="INVITE",
        uri="sip:b@h",
        username="u",
        password="p",
        cnonce="c",
        body=b"v=0\r\n",
    )
    assert fields(one)["qop"] == "auth"
    assert one == two


def test_auth_int_hashes_the_body() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    value = authorization(
        challenge,
        method="INVITE",
        uri="sip:bob@example.com",
        username="u",
        password="p",
        body=body,
        cnonce="c",
        nc=2,
    )
    ha1 = md5("u:r:p")
    ha2 = md5(f"INVITE:sip:bob@example.com:{md5(body)}")
    got = fields(value)
    assert got["qop"] == "auth-int"
    assert got["response"] == md5(f"{ha1}:n:00000002:c:auth-int:{ha2}")
    other = authorization(
        challenge,
        method="INVITE",
        uri="sip:bob@example.com",
        username="u",
        password="p",
        body=body + b"a=sendrecv\r\n",
        cnonce="c",
        nc=2,
    )
    assert fields(other)["response"] != got["response"]


def test_auth_int_with_empty_body() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256')
    value = authorization(
        challenge, method="BYE", uri="sip:b@h", username="u", password="p", cnonce="c"
    )

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha2 = sha(f"BYE:sip:b@h:{sha('')}")
    assert fields(value)["response"] == sha(f"{sha('u:r:p')}:n:00000001:c:auth-int:{ha2}")


@pytest.mark.parametrize(
    ("nc", "text"), [(1, "00000001"), (255, "000000ff"), (0x1234ABCD, "1234abcd")]
)
def test_nc_is_eight_lower_case_hex_digits(nc: int, text: str) -> None:
    challenge = Challenge(realm="r", nonce="n", qop=("auth",))
    value = authorization(
        challenge, method="REGISTER", uri="sip:h", username="u", password="p", cnonce="c", nc=nc
    )
    assert f", nc={text}" in value
    ha1, ha2 = md5("u:r:p"), md5("REGISTER:sip:h")
    assert fields(value)["response"] == md5(f"{ha1}:n:{text}:c:auth:{ha2}")


@pytest.mark.parametrize("nc", [0, -1, 2**32])
def test_nc_out_of_range(nc: int) -> None:
    with pytest.raises(ValueError, match="nonce count"):
        authorization(
            Challenge(realm="r", nonce="n", qop=("auth",)),
            method="REGISTER",
            uri="sip:h",
            username="u",
            password="p",
            nc=nc,
        )


def test_quoting() -> None:
    value = authorization(
        Challenge(realm="r", nonce="n", algorithm="SHA-256-SESS", qop=("auth",), opaque="o"),
        method="REGISTER",
        uri="sip:h",
        username="u",
        password="p",
        cnonce="c",
    )
    for name in ("username", "realm", "nonce", "uri", "response", "cnonce", "opaque"):
        assert re.search(rf'(^Digest |, ){name}="[^"]*"(,|$)', value), name
    for name, token in (("algorithm", "SHA-256-sess"), ("qop", "auth"), ("nc", "00000001")):
        assert f", {name}={token}," in value + ",", name


def test_escaped_values_round_trip_and_hash_unescaped() -> None:
    challenge = parse_challenge(r'Digest realm="Acme \"PBX\", 2", nonce="n\\1", qop="auth"')
    value = authorization(
        challenge,
        method="INVITE",
        uri="sip:b@h",
        username='al"ice',
        password="p",
        cnonce="c",
    )
    echoed = parse_challenge(value)  # the answer is Digest params with realm and nonce too
    assert echoed.realm == 'Acme "PBX", 2'
    assert echoed.nonce == "n\\1"
    ha1 = md5('al"ice:Acme "PBX", 2:p')
    expected = md5(f"{ha1}:n\\1:00000001:c:auth:{md5('INVITE:sip:b@h')}")
    assert f'response="{expected}"' in value
    assert 'username="al\\"ice"' in value


def test_generated_cnonce() -> None:
    challenge = Challenge(realm="r", nonce="n", qop=("auth",))
    first = fields(
        authorization(challenge, method="INVITE", uri="sip:b@h", username="u", password="p")
    )
    second = fields(
        authorization(challenge, method="INVITE", uri="sip:b@h", username="u", password="p")
    )
    assert re.fullmatch(r"[0-9a-f]{32}", first["cnonce"])
    assert first["cnonce"] != second["cnonce"]
    replay = authorization(
        challenge,
        method="INVITE",
        uri="sip:b@h",
        username="u",
        password="p",
        cnonce=first["cnonce"],
    )
    assert fields(replay)["response"] == first["response"]


def test_supported() -> None:
    for name in ("MD5", "md5-sess", "SHA-256", "sha-256-SESS", "SHA-512-256", "SHA-512-256-sess"):
        assert supported(name), name
    for name in ("SHA-512", "SHA-1", "SHA", "AKAv1-MD5", "", "MD5-sess-sess"):
        assert not supported(name), name


@pytest.mark.parametrize(
    "challenge",
    [
        Challenge(realm="r", nonce="n", algorithm="AKAV1-MD5", qop=("auth",)),
        Challenge(realm="r", nonce="n", algorithm="SHA-512", qop=("auth",)),
        Challenge(realm="r", nonce="n", qop=("auth-conf",)),
        Challenge(realm="r", nonce="n", algorithm="MD5-SESS"),
    ],
)
def test_unanswerable_challenge_raises(challenge: Challenge) -> None:
    with pytest.raises(ValueError):
        authorization(challenge, method="INVITE", uri="sip:b@h", username="u", password="p")


def test_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="control character"):
        authorization(
            Challenge(realm="r", nonce="n", qop=("auth",)),
            method="INVITE",
            uri="sip:b@h",
            username="u\r\nVia: forged",
            password="p",
        )
