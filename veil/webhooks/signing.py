"""Plivo's webhook signatures (V3 and V2), computed without I/O.

Veil signs its callbacks exactly as Plivo does, so a customer's receiver that checks them
with Plivo's SDK (``plivo.utils.validate_v3_signature``, ``plivo.utils.validate_signature``)
accepts them. The algorithm is the Python SDK's (plivo-wire.md section 8.3); Go's is the
same.

V3, ``base64(HMAC-SHA256(token, S + "." + nonce))``, where ``base`` is
``scheme://netloc/path`` of the URL (query and fragment dropped, port kept) and:

- GET: ``S = base + "?" + k=v&k=v…`` over the request's query, keys sorted by code point,
  each key's values sorted, URL-*decoded* and not re-encoded (``"?…"`` only if non-empty);
- POST: ``S = base + "?" + <the URL's query as for GET> + ("." if that query is non-empty)
  + k1v1k2v2…`` over the form parameters, keys sorted, no separators at all; with no form
  parameters, ``S`` is the GET form of the URL alone.

V2, ``base64(HMAC-SHA256(token, base + nonce))``: no parameters and no separator.

Each comes twice: ``X-Plivo-Signature-V3`` with the token of the (sub)account that owns the
session and ``X-Plivo-Signature-Ma-V3`` with the main account's token (for an account that
is its own main account the two are equal), and likewise for V2. One nonce serves both.

How the sender must build the request
-------------------------------------
The receiver validates against the URL it was *called on*, so Veil signs that URL, and the
delivery worker must request exactly what :func:`request_url` returns:

- POST: ``request_url(url, "POST", params)`` with ``params`` as an
  ``application/x-www-form-urlencoded`` body (``httpx``'s ``data=params``,
  i.e. ``urllib.parse.urlencode``);
- GET: ``request_url(url, "GET", params)``, which is the customer's URL with ``params``
  urlencoded and appended to any query it already has (a key present in both then has two
  values, and both are signed, as the receiver will see both); no body.

and send ``plivo_headers(url, method, params, …)`` computed from the *customer's* URL and
the same ``params`` (not from the result of :func:`request_url`, which for GET already
holds ``params``).

:func:`request_url` also puts the URL in the form an HTTP client sends it in, since the
path is signed byte for byte: it drops the fragment, lowercases scheme and host, encodes a
non-ASCII host with IDNA, drops a default port, writes an empty path as ``/`` and
percent-encodes what cannot appear raw in a path or query (existing ``%XX`` escapes are
kept). ``httpx`` sends such a URL unchanged. Credentials in the URL (``user:pass@``) are
kept for the client to send as Basic auth but are not signed, since the receiver never sees
them in its URL. One thing no sender can fix: frameworks that rebuild the request URL from
a *decoded* path (Starlette does) see a different path than the one on the wire when it
holds escapes, so customers should keep callback paths to plain ASCII.

What the Python SDK (4.63.0) cannot validate
--------------------------------------------
``validate_v3_signature`` parses the URL as bytes, and ``parse_qs`` then raises
``UnicodeEncodeError`` as soon as a query value or key decodes to non-ASCII text. A V3
check of a GET callback whose parameters hold non-ASCII text, or of any callback whose
customer URL has such a query, therefore crashes in the receiver, whatever the sender
does (Go's SDK parses text and is fine). Veil's event parameters are ASCII (numbers,
UUIDs, timestamps, names); a Python receiver can work around the rest by passing the URL
without its query and ``params=parse_qs(query, keep_blank_values=True)``, which signs the
same string.

Quirk kept on purpose: the SDK splits the URL with ``urlparse``, which cuts ``;params``
off the last path segment, so ``/cb;v=1`` is signed as ``/cb``. We do the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlsplit, urlunparse, urlunsplit

__all__ = [
    "NONCE_DIGITS",
    "new_nonce",
    "plivo_headers",
    "request_url",
    "v2_signature",
    "v3_base_string",
    "v3_signature",
]

NONCE_DIGITS = 20  # the length of the nonce in Plivo's documented example

_METHODS = ("GET", "POST")  # the only callback methods Plivo (and its validators) know
_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 section 3.3 pchar (unreserved, sub-delims, ":" and "@") plus "/" and "%", so that
# existing escapes survive; section 3.4 adds "?" for a query.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def new_nonce() -> str:
    """A fresh random nonce of ``NONCE_DIGITS`` decimal digits, as Plivo sends."""
    return f"{secrets.randbelow(10**NONCE_DIGITS):0{NONCE_DIGITS}d}"


def _method(method: str) -> str:
    upper = method.upper()
    if upper not in _METHODS:
        raise ValueError(f"callback method must be GET or POST, not {method!r}")
    return upper


def _base(url: str) -> str:
    # Exactly the SDK's ``urlunparse((scheme, netloc, path, "", "", ""))`` over ``urlparse``:
    # query, fragment and ``;params`` of the last segment dropped.
    parts = urlparse(url)
    return urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))


def _sorted_query(query: Mapping[str, list[str]]) -> str:
    return "&".join(f"{key}={value}" for key in sorted(query) for value in sorted(query[key]))


def v3_base_string(method: str, url: str, params: Mapping[str, str]) -> str:
    """The string V3 signs before ``"." + nonce`` is appended.

    ``url`` is the URL as the receiver sees it (for GET, with the parameters already in its
    query, or not: keys of the URL's query override ``params``, as in the SDK).
    Raises ``ValueError`` for a method other than GET or POST (any case).
    """
    method = _method(method)
    base = _base(url)
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    if method == "GET":
        merged = {key: [value] for key, value in params.items()}
        merged.update(query)
        merged_string = _sorted_query(merged)
        return f"{base}?{merged_string}" if merged_string else base
    query_string = _sorted_query(query)
    if not params:
        return f"{base}?{query_string}" if query_string else base
    separator = "." if query_string else ""
    form = "".join(f"{key}{params[key]}" for key in sorted(params))
    return f"{base}?{query_string}{separator}{form}"


def _hmac_base64(token: str, message: str) -> str:
    digest = hmac.new(token.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def v3_signature(method: str, url: str, params: Mapping[str, str], nonce: str, token: str) -> str:
    """The V3 signature (44 base64 characters) of a request to ``url`` with ``params``.

    ``nonce`` must be ASCII (the SDK reads its bytes as Latin-1 before re-encoding them as
    UTF-8, so any other nonce would be signed differently by each side); ``ValueError``
    otherwise, or for a method other than GET or POST.
    """
    if not nonce.isascii():
        raise ValueError("the nonce must be ASCII")
    return _hmac_base64(token, f"{v3_base_string(method, url, params)}.{nonce}")


def v2_signature(url: str, nonce: str, token: str) -> str:
    """The V2 signature of a request to ``url``: only ``scheme://netloc/path`` and the nonce
    are signed. ``ValueError`` for a non-ASCII nonce, as for V3."""
    if not nonce.isascii():
        raise ValueError("the nonce must be ASCII")
    return _hmac_base64(token, _base(url) + nonce)


def _host(hostname: str) -> str:
    if not hostname.isascii():
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"host {hostname!r} cannot be encoded with IDNA") from exc
    return f"[{hostname}]" if ":" in hostname else hostname


def _remove_dot_segments(path: str) -> str:
    """The path as httpx puts it on the wire (its ``normalize_path``, RFC 3986 5.2.4 but
    with no slash kept after a final ``.`` or ``..``): the path signed must be that one."""
    components = path.split("/")
    if "." not in components and ".." not in components:
        return path
    output: list[str] = []
    for component in components:
        if component == ".":
            continue
        if component == "..":
            if output and output != [""]:
                output.pop()
        else:
            output.append(component)
    return "/".join(output)


def _target(url: str, method: str, params: Mapping[str, str]) -> tuple[str, str]:
    """(the URL to request, the same URL without credentials, which is what is signed)."""
    method = _method(method)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"callback URL must be an absolute http(s) URL, not {url!r}")
    host = _host(parts.hostname)
    port = parts.port  # ValueError for a port that is not a number in range
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    path = _remove_dot_segments(quote(parts.path, safe=_PATH_SAFE)) or "/"
    query = quote(parts.query, safe=_QUERY_SAFE)
    if method == "GET" and params:
        encoded = urlencode(params)
        query = f"{query}&{encoded}" if query else encoded
    signed = urlunsplit((scheme, host, path, query, ""))
    requested = urlunsplit((scheme, f"{userinfo}{at}{host}", path, query, ""))
    return requested, signed


def request_url(url: str, method: str, params: Mapping[str, str]) -> str:
    """The URL the delivery worker must request for a callback to ``url``.

    For GET it carries ``params`` urlencoded after any query ``url`` already has; for POST
    it is ``url`` alone (``params`` go in the form body). Either way it is normalized as the
    module docstring says. Raises ``ValueError`` for a URL that is not absolute http(s), a
    bad port or host, or a method other than GET or POST.
    """
    return _target(url, method, params)[0]


def plivo_headers(
    url: str,
    method: str,
    params: Mapping[str, str],
    auth_token: str,
    main_auth_token: str,
    nonce: str | None = None,
) -> dict[str, str]:
    """The signature headers of one Plivo-style callback request (V3 and V2, account and
    main account).

    ``url`` is the URL the request goes to (for GET, before Veil appends ``params`` as the
    query; any query already in the customer's URL counts as the algorithm says). The
    request itself must go to ``request_url(url, method, params)``. ``nonce``: a fresh
    20-digit random one when None. Raises ``ValueError`` as :func:`request_url` and
    :func:`v3_signature` do.
    """
    if nonce is None:
        nonce = new_nonce()
    _, signed = _target(url, method, params)
    # For GET the parameters are in ``signed``'s query already; passing them again would
    # change nothing, since the URL's query overrides them key by key.
    form: Mapping[str, str] = params if _method(method) == "POST" else {}
    return {
        "X-Plivo-Signature-V3": v3_signature(method, signed, form, nonce, auth_token),
        "X-Plivo-Signature-Ma-V3": v3_signature(method, signed, form, nonce, main_auth_token),
        "X-Plivo-Signature-V3-Nonce": nonce,
        "X-Plivo-Signature-V2": v2_signature(signed, nonce, auth_token),
        "X-Plivo-Signature-Ma-V2": v2_signature(signed, nonce, main_auth_token),
        "X-Plivo-Signature-V2-Nonce": nonce,
    }


def infobip_authorization(api_id: str, key: str, url: str, body: bytes) -> str:
    """Infobip's number masking signature for a callback or status report to ``url``:
    ``apiId:hex(SHA256(path + query + body + key))``, the path and query as the
    request line carries them ("Concatenating URL path of the API, query parameters,
    request body and the credential key", Infobip's credentials page)."""
    parts = urlsplit(url)
    message = (parts.path or "/").encode() + parts.query.encode() + body + key.encode()
    return f"{api_id}:{hashlib.sha256(message).hexdigest()}"
