"""Plivo webhook signatures, checked against the vectors of plivo-wire.md section 8.3 and
against the official SDK's own validators, fed what a receiver sees on the wire."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlparse, urlsplit, urlunparse, urlunsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plivo.utils import signature_v3 as sdk
from plivo.utils import validate_signature, validate_v3_signature

from veil.webhooks.signing import (
    NONCE_DIGITS,
    new_nonce,
    plivo_headers,
    request_url,
    v2_signature,
    v3_base_string,
    v3_signature,
)

TOKEN = "MyAuthToken123"  # the token of plivo-wire.md's vectors
NONCE = "05429567804466091622"  # the docs' example nonce
EDGE_NONCE = "12345678901234567890"
SUB_TOKEN = "SubAccountToken0000000000000000000000000"
MAIN_TOKEN = "MainAccountToken000000000000000000000000"

EVENT = {
    "EventName": "SessionFirstPartyAnswer",
    "EventTimestamp": "2024-05-01 10:00:00 +0000 UTC",
    "SessionUUID": "0f3d1c2e-aaaa-bbbb-cccc-123456789abc",
    "From": "+14155550100",
    "To": "+14155550199",
    "VirtualNumber": "+14155550123",
    "SequenceNumber": "3",
    "PlivoHangupCause": "",
    "Note": "a b+c&d=e%20f ünïcødé ☎ 日本",
}


# -- plivo-wire.md section 8.3 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "params", "signed"),
    [
        (
            "POST",
            "https://example.com/masking/cb",
            {
                "EventName": "SessionFirstPartyAnswer",
                "SessionUUID": "abc",
                "From": "14155550100",
                "To": "14155550199",
            },
            "https://example.com/masking/cb?EventNameSessionFirstPartyAnswerFrom14155550100"
            "SessionUUIDabcTo14155550199",
        ),
        (
            "GET",
            "https://example.com/masking/cb?x=1",
            {"EventName": "SessionTimeout", "SessionUUID": "abc"},
            "https://example.com/masking/cb?EventName=SessionTimeout&SessionUUID=abc&x=1",
        ),
        ("POST", "https://example.com/masking/cb", {}, "https://example.com/masking/cb"),
        (
            "POST",
            "https://example.com/masking/cb?x=1&a=2",
            {"B": "2", "A": "1"},
            "https://example.com/masking/cb?a=2&x=1.A1B2",
        ),
        (
            "GET",
            "https://example.com/masking/cb",
            {"B": "2", "A": "1"},
            "https://example.com/masking/cb?A=1&B=2",
        ),
        # Code-point order: uppercase before lowercase.
        (
            "GET",
            "https://example.com/masking/cb",
            {"b": "1", "B": "2"},
            "https://example.com/masking/cb?B=2&b=1",
        ),
        (
            "POST",
            "https://example.com/masking/cb",
            {"b": "1", "B": "2"},
            "https://example.com/masking/cb?B2b1",
        ),
    ],
)
def test_v3_base_string_vectors(method: str, url: str, params: dict[str, str], signed: str) -> None:
    assert v3_base_string(method, url, params) == signed
    for nonce in (NONCE, EDGE_NONCE):
        signature = v3_signature(method, url, params, nonce, TOKEN)
        assert validate_v3_signature(method, url, nonce, TOKEN, signature, params=dict(params))


@pytest.mark.parametrize(
    ("method", "url", "params", "signature"),
    [
        (
            "POST",
            "https://example.com/masking/cb",
            {
                "EventName": "SessionFirstPartyAnswer",
                "SessionUUID": "abc",
                "From": "14155550100",
                "To": "14155550199",
            },
            "+UwM13nipvZIbQ0GLjsJjJ21qkggOSF6V6lGwQp5OVg=",
        ),
        (
            "GET",
            "https://example.com/masking/cb?x=1",
            {"EventName": "SessionTimeout", "SessionUUID": "abc"},
            "Q0gRDF99Kf9vdMwS5hQKokBMdSPMcxFFp0NkEllhiHc=",
        ),
    ],
)
def test_v3_signature_vectors(
    method: str, url: str, params: dict[str, str], signature: str
) -> None:
    assert v3_signature(method, url, params, NONCE, TOKEN) == signature
    # The headers are computed from the customer's URL, before GET appends the parameters.
    headers = plivo_headers(url, method, params, TOKEN, TOKEN, nonce=NONCE)
    assert headers["X-Plivo-Signature-V3"] == signature
    assert headers["X-Plivo-Signature-Ma-V3"] == signature
    assert headers["X-Plivo-Signature-V3-Nonce"] == NONCE


def test_v2_signature_vector() -> None:
    url = "https://example.com/masking/cb?x=1"
    signature = "fX/HbnHEXfNOJxwY7T5E+BYIHZXp7PT+JBqROlW+3UA="
    assert v2_signature(url, NONCE, TOKEN) == signature
    assert (
        plivo_headers(url, "GET", {"a": "b"}, TOKEN, TOKEN, NONCE)["X-Plivo-Signature-V2"]
        == signature
    )
    assert validate_signature(url, NONCE, signature, TOKEN)


def test_method_is_case_insensitive() -> None:
    params = {"EventName": "SessionTimeout", "SessionUUID": "abc"}
    url = "https://example.com/masking/cb?x=1"
    assert v3_signature("get", url, params, NONCE, TOKEN) == v3_signature(
        "GET", url, params, NONCE, TOKEN
    )
    assert plivo_headers(url, "post", params, TOKEN, TOKEN, NONCE) == plivo_headers(
        url, "POST", params, TOKEN, TOKEN, NONCE
    )


def test_path_parameters_are_cut_as_the_sdk_cuts_them() -> None:
    # urlparse takes ";v=1" for the last segment's parameters and the SDK drops them.
    assert (
        v3_base_string("POST", "https://example.com/cb;v=1?x=1", {"A": "1"})
        == "https://example.com/cb?x=1.A1"
    )


# -- request_url: what the delivery worker requests -----------------------------------------


@pytest.mark.parametrize(
    ("url", "method", "params", "expected"),
    [
        ("https://example.com/cb", "POST", {"a": "1"}, "https://example.com/cb"),
        ("https://example.com/cb?x=1", "POST", {"a": "1"}, "https://example.com/cb?x=1"),
        ("https://example.com/cb", "GET", {}, "https://example.com/cb"),
        (
            "https://example.com/cb",
            "GET",
            {"a": "1", "b": "x y"},
            "https://example.com/cb?a=1&b=x+y",
        ),
        (
            "https://example.com/cb?x=1",
            "get",
            {"a": "+&=ü"},
            "https://example.com/cb?x=1&a=%2B%26%3D%C3%BC",
        ),
        ("https://example.com/cb?", "GET", {"a": "1"}, "https://example.com/cb?a=1"),
        ("https://example.com/cb?a=0", "GET", {"a": "1"}, "https://example.com/cb?a=0&a=1"),
        ("https://example.com/cb#frag", "GET", {"a": "1"}, "https://example.com/cb?a=1"),
        ("HTTPS://Example.COM:443/CB", "POST", {}, "https://example.com/CB"),
        ("http://example.com:80", "POST", {}, "http://example.com/"),
        ("http://example.com:8080/", "POST", {}, "http://example.com:8080/"),
        ("http://[::1]:8080/cb", "POST", {}, "http://[::1]:8080/cb"),
        ("https://bücher.example/cb", "POST", {}, "https://xn--bcher-kva.example/cb"),
        ("https://u:p@example.com/cb", "POST", {}, "https://u:p@example.com/cb"),
        (
            "https://example.com/a b/ü/%41?q=x y&r=ü",
            "POST",
            {},
            "https://example.com/a%20b/%C3%BC/%41?q=x%20y&r=%C3%BC",
        ),
    ],
)
def test_request_url(url: str, method: str, params: dict[str, str], expected: str) -> None:
    assert request_url(url, method, params) == expected
    # httpx sends it as it is: what Veil signs is what goes on the wire.
    assert str(httpx.Request(method, expected).url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/cb",
        "/masking/cb",
        "example.com/cb",
        "https:///cb",
        "https://example.com:99999/cb",
    ],
)
def test_request_url_refuses_what_cannot_be_called(url: str) -> None:
    with pytest.raises(ValueError):
        request_url(url, "POST", {})
    with pytest.raises(ValueError):
        plivo_headers(url, "POST", {}, SUB_TOKEN, MAIN_TOKEN)


@pytest.mark.parametrize("method", ["PUT", "DELETE", ""])
def test_other_methods_are_refused(method: str) -> None:
    with pytest.raises(ValueError, match="GET or POST"):
        plivo_headers("https://example.com/cb", method, {}, SUB_TOKEN, MAIN_TOKEN)
    with pytest.raises(ValueError, match="GET or POST"):
        v3_signature(method, "https://example.com/cb", {}, NONCE, TOKEN)


def test_non_ascii_nonce_is_refused() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        v3_signature("GET", "https://example.com/cb", {}, "ü", TOKEN)
    with pytest.raises(ValueError, match="ASCII"):
        v2_signature("https://example.com/cb", "ü", TOKEN)


def test_new_nonce() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(nonce) == NONCE_DIGITS and nonce.isdigit() for nonce in nonces)


def test_headers_make_a_nonce_when_none_is_given() -> None:
    headers = plivo_headers("https://example.com/cb", "POST", EVENT, SUB_TOKEN, MAIN_TOKEN)
    assert list(headers) == [
        "X-Plivo-Signature-V3",
        "X-Plivo-Signature-Ma-V3",
        "X-Plivo-Signature-V3-Nonce",
        "X-Plivo-Signature-V2",
        "X-Plivo-Signature-Ma-V2",
        "X-Plivo-Signature-V2-Nonce",
    ]
    nonce = headers["X-Plivo-Signature-V3-Nonce"]
    assert len(nonce) == NONCE_DIGITS and nonce.isdigit()
    assert headers["X-Plivo-Signature-V2-Nonce"] == nonce
    assert all(len(headers[name]) == 44 for name in headers if not name.endswith("Nonce"))
    other = plivo_headers("https://example.com/cb", "POST", EVENT, SUB_TOKEN, MAIN_TOKEN)
    assert other["X-Plivo-Signature-V3-Nonce"] != nonce


# -- the SDK's validators, fed what a receiver sees -----------------------------------------


@dataclass(frozen=True)
class Received:
    """One callback as its receiver sees it: the URL rebuilt from the Host header and the
    request target, the decoded form body, the query as a flat dict, and the headers."""

    method: str
    uri: str
    form: dict[str, str]
    args: dict[str, str]
    headers: Mapping[str, str]


def received(
    scheme: str, method: str, target: str, headers: Mapping[str, str], body: bytes
) -> Received:
    uri = f"{scheme}://{headers['host']}{target}"
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    args = dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))
    return Received(method, uri, form, args, headers)


def build(
    url: str, method: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> httpx.Request:
    """The request the delivery worker sends, as the module docstring tells it to."""
    target = request_url(url, method, params)
    if method.upper() == "POST":
        return httpx.Request(method.upper(), target, data=dict(params), headers=dict(headers))
    return httpx.Request(method.upper(), target, headers=dict(headers))


def in_memory(
    url: str, method: str, params: Mapping[str, str], nonce: str | None = None
) -> Received:
    request = build(
        url, method, params, plivo_headers(url, method, params, SUB_TOKEN, MAIN_TOKEN, nonce)
    )
    body = request.read()
    return received(
        request.url.scheme,
        request.method,
        request.url.raw_path.decode("ascii"),
        request.headers,
        body,
    )


def sdk_v3(got: Received, header: str, token: str, *, flat_args: bool = False) -> bool:
    """``validate_v3_signature`` called as a receiver calls it: with the request URL, and the
    form for POST; for GET either nothing (the URL's query is used) or the query as a dict,
    which the URL's query then overrides anyway."""
    params = got.form if got.method == "POST" else (got.args if flat_args else None)
    nonce = got.headers["X-Plivo-Signature-V3-Nonce"]
    return bool(
        validate_v3_signature(got.method, got.uri, nonce, token, got.headers[header], params=params)
    )


def sdk_parses(uri: str) -> bool:
    """Whether the SDK can read the URL's query: it parses it as bytes, and ``parse_qs``
    then raises ``UnicodeEncodeError`` for any non-ASCII character once decoded."""
    return all(
        key.isascii() and value.isascii()
        for key, value in parse_qsl(urlsplit(uri).query, keep_blank_values=True)
    )


def sdk_v3_text_query(got: Received, header: str, token: str) -> bool:
    """The SDK's POST validation assembled from its own pieces, with the query parsed as
    text (as Go's SDK does) instead of as bytes."""
    parts = urlparse(got.uri)
    base = urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))
    query = sdk.get_sorted_query_string(sdk.get_map_from_query(parts.query))
    signed = f"{base}?{query}" if query or got.form else base
    if got.form:
        signed += ("." if query else "") + sdk.get_sorted_params_string(got.form)
    nonce = got.headers["X-Plivo-Signature-V3-Nonce"].encode()
    signature: bytes = sdk.get_signature_v3(token.encode(), signed, nonce)
    return signature in got.headers[header].encode().split(b",")


def v3_valid(got: Received, header: str, token: str) -> bool:
    if sdk_parses(got.uri):
        valid = sdk_v3(got, header, token)
        if got.method == "GET":
            assert sdk_v3(got, header, token, flat_args=True) == valid
        return valid
    # The SDK's bug: it cannot validate any request whose query holds non-ASCII text.
    with pytest.raises(UnicodeEncodeError):
        sdk_v3(got, header, token)
    if got.method == "POST":
        return sdk_v3_text_query(got, header, token)
    # A GET receiver gets around it by passing the URL without its query, and the query
    # parsed as text as the parameters.
    base = urlunsplit(urlsplit(got.uri)._replace(query=""))
    query = parse_qs(urlsplit(got.uri).query, keep_blank_values=True)
    nonce = got.headers["X-Plivo-Signature-V3-Nonce"]
    return bool(validate_v3_signature("GET", base, nonce, token, got.headers[header], params=query))


def v2_valid(got: Received, header: str, token: str) -> bool:
    nonce = got.headers["X-Plivo-Signature-V2-Nonce"]
    return bool(validate_signature(got.uri, nonce, got.headers[header], token))


def assert_sdk_accepts(got: Received) -> None:
    assert v3_valid(got, "X-Plivo-Signature-V3", SUB_TOKEN)
    assert v3_valid(got, "X-Plivo-Signature-Ma-V3", MAIN_TOKEN)
    assert v2_valid(got, "X-Plivo-Signature-V2", SUB_TOKEN)
    assert v2_valid(got, "X-Plivo-Signature-Ma-V2", MAIN_TOKEN)
    # Each header is bound to its own token.
    assert not v3_valid(got, "X-Plivo-Signature-Ma-V3", SUB_TOKEN)
    assert not v3_valid(got, "X-Plivo-Signature-V3", MAIN_TOKEN)
    assert not v2_valid(got, "X-Plivo-Signature-Ma-V2", SUB_TOKEN)
    assert not v2_valid(got, "X-Plivo-Signature-V2", MAIN_TOKEN)


@pytest.mark.parametrize(
    ("url", "method", "params"),
    [
        ("https://example.com/cb", "GET", {"Note": "ü"}),
        ("https://example.com/cb?k=%C3%BC", "POST", {"Note": "x"}),
    ],
)
def test_sdk_raises_on_non_ascii_query_text(url: str, method: str, params: dict[str, str]) -> None:
    got = in_memory(url, method, params)
    assert not sdk_parses(got.uri)
    with pytest.raises(UnicodeEncodeError):
        sdk_v3(got, "X-Plivo-Signature-V3", SUB_TOKEN)
    assert v3_valid(got, "X-Plivo-Signature-V3", SUB_TOKEN)  # by the workaround


CUSTOMER_URLS = [
    "https://example.com/masking/cb",
    "https://example.com/masking/cb/",
    "https://example.com",
    "https://example.com/masking/cb?x=1&a=2",
    "https://example.com/masking/cb?token=a%20b+c&empty=&x=1&x=0",
    "https://example.com/masking/cb?From=customer",  # a key Veil also sends
    "https://Example.COM:443/masking/cb#fragment",
    "http://127.0.0.1:8080/hooks/plivo;v=1?k=ü",
    "https://example.com/a b/ü?q=<>",
]


@pytest.mark.parametrize("method", ["POST", "GET", "get"])
@pytest.mark.parametrize("url", CUSTOMER_URLS)
def test_sdk_validates_veil_requests(url: str, method: str) -> None:
    assert_sdk_accepts(in_memory(url, method, EVENT))


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("url", ["https://example.com/cb", "https://example.com/cb?x=1"])
def test_sdk_validates_requests_without_params(url: str, method: str) -> None:
    assert_sdk_accepts(in_memory(url, method, {}))


def test_one_token_for_both_headers_when_the_account_is_the_main_account() -> None:
    headers = plivo_headers("https://example.com/cb", "POST", EVENT, TOKEN, TOKEN, NONCE)
    assert headers["X-Plivo-Signature-V3"] == headers["X-Plivo-Signature-Ma-V3"]
    assert headers["X-Plivo-Signature-V2"] == headers["X-Plivo-Signature-Ma-V2"]


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    "url", ["https://example.com/masking/cb", "https://example.com/masking/cb?x=1"]
)
def test_tampered_requests_fail(url: str, method: str) -> None:
    got = in_memory(url, method, EVENT, nonce=NONCE)
    assert_sdk_accepts(got)
    for token in (SUB_TOKEN, MAIN_TOKEN):
        header = "X-Plivo-Signature-V3" if token == SUB_TOKEN else "X-Plivo-Signature-Ma-V3"
        assert not v3_valid(got, header, token + "x")
        # Stale: the signature of this request replayed with another nonce.
        stale_headers = httpx.Headers(got.headers)
        stale_headers["X-Plivo-Signature-V3-Nonce"] = EDGE_NONCE
        stale = replace(got, headers=stale_headers)
        assert not v3_valid(stale, header, token)
        other_path = replace(got, uri=got.uri.replace("/masking/cb", "/masking/cc"))
        assert not v3_valid(other_path, header, token)
    if method == "POST":
        changed = replace(got, form={**got.form, "To": "+14155550198"})
        added = replace(got, form={**got.form, "Extra": ""})
        dropped = replace(got, form={k: v for k, v in got.form.items() if k != "SequenceNumber"})
    else:
        changed = replace(got, uri=got.uri.replace("To=%2B14155550199", "To=%2B14155550198"))
        added = replace(got, uri=got.uri + "&Extra=")
        dropped = replace(got, uri=got.uri.replace("SequenceNumber=3&", ""))
    for tampered in (changed, added, dropped):
        assert tampered != got
        assert not v3_valid(tampered, "X-Plivo-Signature-V3", SUB_TOKEN)
        assert not v3_valid(tampered, "X-Plivo-Signature-Ma-V3", MAIN_TOKEN)


# -- over a real socket ---------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def _receive(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = httpx.Headers(list(self.headers.items()))
        self.server.received.put(received("http", self.command, self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _receive

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ReceiverServer(ThreadingHTTPServer):
    received: queue.Queue[Received]


@pytest.fixture(scope="module")
def receiver() -> Iterator[_ReceiverServer]:
    server = _ReceiverServer(("127.0.0.1", 0), _Receiver)
    server.received = queue.Queue()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    "path", ["/masking/cb", "/masking/cb/?x=1&a=b%20c", "?From=customer", "/ü/a b?q=ü"]
)
def test_sdk_validates_what_a_real_receiver_gets(
    receiver: _ReceiverServer, path: str, method: str
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}{path}"
    request = build(url, method, EVENT, plivo_headers(url, method, EVENT, SUB_TOKEN, MAIN_TOKEN))
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        assert client.send(request).status_code == 200
    got = receiver.received.get(timeout=5.0)
    if method == "POST":
        assert got.form == EVENT
    else:
        assert {k: got.args[k] for k in EVENT} == EVENT
    assert_sdk_accepts(got)


# -- property --------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(_text, _text, max_size=8),
    url=st.sampled_from(CUSTOMER_URLS),
    segment=st.text(st.characters(codec="utf-8", exclude_characters="?#"), max_size=8),
    method=st.sampled_from(["GET", "POST"]),
)
def test_sdk_validates_any_params(
    params: dict[str, str], url: str, segment: str, method: str
) -> None:
    parts = urlsplit(url)
    url = parts._replace(path=f"{parts.path.rstrip('/')}/{segment}").geturl()
    target = request_url(url, method, params)
    assert str(httpx.Request(method, target).url) == target
    assert_sdk_accepts(in_memory(url, method, params))


@pytest.mark.parametrize("path", ["/cb/.", "/a/b/../c", "/a/./b", "/..", "/a/b/..", "/."])
def test_dot_segments_are_signed_as_httpx_sends_them(path: str) -> None:
    url = request_url(f"https://example.com{path}", "POST", {})
    assert httpx.URL(url).raw_path.decode() == urlsplit(url).path
