"""SIP digest authentication, client side: answering a trunk's 401/407 challenge.

RFC 3261 22.4 uses HTTP digest (RFC 2617); RFC 8760 adds RFC 7616's SHA-256 and
SHA-512/256 to SIP. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from veil.sip.errors import ParseError

# RFC 7616 3.2 / RFC 8760 2.1. Keys upper case; values are the hash function and the
# registered spelling sent back in ``algorithm=`` (some servers compare it verbatim).
_ALGORITHMS: dict[str, tuple[Callable[[bytes], str], str]] = {}


def _register(name: str, hash_name: str) -> None:
    def digest(data: bytes) -> str:
        return hashlib.new(hash_name, data).hexdigest()

    _ALGORITHMS[name.upper()] = (digest, name)
    _ALGORITHMS[f"{name}-sess".upper()] = (digest, f"{name}-sess")


_register("MD5", "md5")
_register("SHA-256", "sha256")
# SHA-512/256 is its own function (distinct initial values), not SHA-512 cut in half.
_register("SHA-512-256", "sha512_256")

_SEPARATORS = frozenset(" \t\r\n,=")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One Digest challenge from a WWW-Authenticate or Proxy-Authenticate value."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # as given, upper-cased
    qop: tuple[str, ...] = ()  # offered qop values, lower case
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False


def supported(algorithm: str) -> bool:
    """Whether ``algorithm`` (any case) can be answered."""
    return algorithm.upper() in _ALGORITHMS


def parse_challenge(value: str) -> Challenge:
    """Parse ``Digest realm="...", nonce="...", ...``.

    Raises ParseError for another scheme, bad syntax, a repeated parameter, or a missing
    realm or nonce. Unknown parameters (domain, charset, ...) are ignored.
    """
    text = value.strip()
    scheme, rest = text[:6], text[6:]
    if scheme.lower() != "digest" or (rest and rest[0] not in " \t\r\n"):
        raise ParseError(f"not a Digest challenge: {value!r}")
    params = _parse_params(rest)
    if "realm" not in params or "nonce" not in params:
        raise ParseError(f"Digest challenge without realm or nonce: {value!r}")
    qop = params.get("qop", "")
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=tuple(q.strip().lower() for q in qop.split(",") if q.strip()),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
    )


def _parse_params(text: str) -> dict[str, str]:
    """``name=value`` pairs separated by commas (RFC 7235 auth-param, with RFC 7230's
    tolerance for empty list elements); values are tokens or quoted strings. Names are
    lower-cased, quoted values unescaped.

    A scanner rather than a comma split: quoted values may hold commas and escaped quotes.
    """
    params: dict[str, str] = {}
    i, n = 0, len(text)

    def skip_space(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    while True:
        i = skip_space(i)
        while i < n and text[i] == ",":
            i = skip_space(i + 1)
        if i >= n:
            return params
        start = i
        while i < n and text[i] not in _SEPARATORS and text[i] != '"':
            i += 1
        name = text[start:i].lower()
        i = skip_space(i)
        if not name or i >= n or text[i] != "=":
            raise ParseError(f"bad Digest parameter at {text[start:]!r}")
        i = skip_space(i + 1)
        if i < n and text[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise ParseError(f"unterminated quoted string in {text!r}")
            i += 1
            param = "".join(chars)
        else:
            # Unquoted: a token, but tolerate the base64 nonces ("/", "=") some servers send.
            start = i
            while i < n and text[i] not in " \t\r\n,":
                i += 1
            param = text[start:i]
            if not param:
                raise ParseError(f"empty value for Digest parameter {name!r}")
        if name in params:
            # An ambiguous challenge could be read differently by us and the server.
            raise ParseError(f"repeated Digest parameter {name!r}")
        params[name] = param
        i = skip_space(i)
        if i < n and text[i] != ",":
            raise ParseError(f"junk after Digest parameter {name!r}: {text[i:]!r}")


def pick_challenge(values: list[str]) -> Challenge | None:
    """The challenge to answer: the first (topmost) one that can be answered.

    RFC 8760 2.3 has the server list its challenges "in the order in which it would prefer
    to see them used" and 2.4 has the client "use the topmost header field that it
    supports unless a local policy dictates otherwise" (RFC 7616 3.7 says the same for
    HTTP). So server order wins, not hash strength: a trunk that lists SHA-256 first gets
    SHA-256, one that lists MD5 first gets MD5. Challenges with another scheme, bad syntax,
    or an algorithm or qop we cannot answer are skipped, as 8760 2.4 requires for
    unsupported algorithms.

    Known trade-off (RFC 8760 3): the order is not integrity-protected, so an on-path
    attacker could move MD5 to the top; TLS to the trunk is the defence, not reordering.
    With several realms this answers the topmost realm only.
    """
    for value in values:
        try:
            challenge = parse_challenge(value)
            _answer_mode(challenge)
        except ValueError:  # ParseError included
            continue
        return challenge
    return None


def _answer_mode(challenge: Challenge) -> tuple[Callable[[bytes], str], str, str | None]:
    """Hash function, algorithm spelling and qop (None: RFC 2069 mode) for ``challenge``;
    ValueError when it cannot be answered."""
    entry = _ALGORITHMS.get(challenge.algorithm.upper())
    if entry is None:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm!r}")
    h, name = entry
    if not challenge.qop:
        if name.endswith("-sess"):
            # -sess needs a cnonce, which RFC 2617 3.2.2 forbids sending without qop.
            raise ValueError(f"{name} challenge without qop")
        return h, name, None
    # "auth" over "auth-int": both authenticate the request; auth-int also covers the
    # body, which a proxy rewriting SDP would break.
    for qop in ("auth", "auth-int"):
        if qop in challenge.qop:
            return h, name, qop
    raise ValueError(f"no supported qop in {challenge.qop!r}")


def authorization(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    body: bytes = b"",
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``.

    ``uri`` is the Request-URI as sent, ``body`` the message body (used by auth-int),
    ``nc`` the count of requests sent with this nonce. Raises ValueError when the
    algorithm or the offered qop values cannot be answered.
    """
    h, algorithm_name, qop = _answer_mode(challenge)
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count out of range: {nc}")
    if cnonce is None:
        cnonce = secrets.token_hex(16)

    def hs(*parts: str) -> str:
        return h(":".join(parts).encode())

    # RFC 7616 3.4.2 / 3.4.3 (RFC 2617 3.2.2.2 / 3.2.2.3).
    ha1 = hs(username, challenge.realm, password)
    if algorithm_name.endswith("-sess"):
        ha1 = hs(ha1, challenge.nonce, cnonce)
    ha2 = hs(method, uri, h(body)) if qop == "auth-int" else hs(method, uri)
    nc_value = f"{nc:08x}"
    if qop is None:
        response = hs(ha1, challenge.nonce, ha2)  # RFC 2069 compatibility
    else:
        response = hs(ha1, challenge.nonce, nc_value, cnonce, qop, ha2)

    # RFC 7616 3.4.4: the hashed username replaces the plain one only on the wire.
    shown_user = hs(username, challenge.realm) if challenge.userhash else username
    fields = [
        f"username={_quote(shown_user)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm_name}",
    ]
    if qop is not None:
        fields += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_value}"]
    if challenge.opaque is not None:
        fields.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.userhash:
        fields.append("userhash=true")
    return "Digest " + ", ".join(fields)


def _quote(value: str) -> str:
    """A quoted-string; refuses line breaks and NUL, which would forge header lines."""
    if any(ch in value for ch in "\r\n\0"):
        raise ValueError(f"control character in digest value {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
