"""Infobip's number masking signature, ``Authorization: apiId:hex(SHA256(path + query +
body + key))``, checked against a value computed here from the documented rule."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.webhooks.signing import infobip_authorization

API_ID = "nm-api-1"
KEY = "0123456789abcdef"
BODY = orjson.dumps(
    {
        "from": "41793026727",
        "to": "41793026700",
        "correlationId": "call-1",
        "nmCorrelationId": "inbound-1",
    }
)


def expected(api_id: str, key: str, path: str, query: str, body: bytes) -> str:
    """Infobip's rule: "Concatenating URL path of the API, query parameters, request body
    and the credential key", hashed with SHA-256, written as hex, after ``apiId:``."""
    digest = hashlib.sha256(path.encode() + query.encode() + body + key.encode()).hexdigest()
    return f"{api_id}:{digest}"


def test_a_known_value() -> None:
    # printf '/nm/cb{}secret' | sha256sum
    digest = "2f8cd3f01accef6dc29631acec0b6e0fd4afe8c59681fc7ee7e767a05cc426ff"
    url = "https://customer.example/nm/cb"
    assert infobip_authorization("id", "secret", url, b"{}") == f"id:{digest}"


def test_path_and_body() -> None:
    url = "https://customer.example/nm/callback"
    signed = infobip_authorization(API_ID, KEY, url, BODY)
    assert signed == expected(API_ID, KEY, "/nm/callback", "", BODY)
    api_id, _, digest = signed.partition(":")
    assert api_id == API_ID
    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def test_query_is_signed_without_its_question_mark() -> None:
    url = "https://customer.example/nm/status?tenant=7&x=a%20b"
    assert infobip_authorization(API_ID, KEY, url, BODY) == expected(
        API_ID, KEY, "/nm/status", "tenant=7&x=a%20b", BODY
    )
    assert infobip_authorization(API_ID, KEY, url, BODY) != infobip_authorization(
        API_ID, KEY, "https://customer.example/nm/status", BODY
    )


@pytest.mark.parametrize("url", ["https://customer.example", "http://127.0.0.1:8080"])
def test_an_empty_path_is_signed_as_slash(url: str) -> None:
    assert infobip_authorization(API_ID, KEY, url, BODY) == expected(API_ID, KEY, "/", "", BODY)
    assert infobip_authorization(API_ID, KEY, url + "?a=1", BODY) == expected(
        API_ID, KEY, "/", "a=1", BODY
    )


def test_host_port_scheme_and_fragment_are_not_signed() -> None:
    one = infobip_authorization(API_ID, KEY, "https://a.example/cb?q=1", BODY)
    assert infobip_authorization(API_ID, KEY, "http://b.example:8443/cb?q=1#top", BODY) == one


def test_everything_signed_changes_the_signature() -> None:
    url = "https://customer.example/cb"
    base = infobip_authorization(API_ID, KEY, url, BODY)
    assert infobip_authorization(API_ID, KEY + "x", url, BODY) != base
    assert infobip_authorization(API_ID, KEY, url + "2", BODY) != base
    assert infobip_authorization(API_ID, KEY, url, BODY + b" ") != base
    assert infobip_authorization("other", KEY, url, BODY).split(":")[1] == base.split(":")[1]


def test_an_empty_body() -> None:
    assert infobip_authorization(API_ID, KEY, "https://c.example/x", b"") == expected(
        API_ID, KEY, "/x", "", b""
    )


_segment = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(_segment, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    query=st.lists(st.tuples(_segment, _segment), max_size=3).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
    ),
    body=st.binary(max_size=64),
    key=st.text(max_size=20),
)
def test_matches_the_rule(path: str, query: str, body: bytes, key: str) -> None:
    url = "https://customer.example" + path + (f"?{query}" if query else "")
    assert infobip_authorization(API_ID, key, url, body) == expected(API_ID, key, path, query, body)
