"""RFC 3261 grammar pieces shared by the parser: tokens, quoted strings, parameters,
comma lists, URIs and addresses (name-addr / addr-spec). Pure functions, no I/O."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace

from veil.sip.errors import ParseError

# Parsed header values, by their text. A message's fields are read many times on its way
# through the transaction layer and the B2BUA; the results are immutable by convention
# (never change a returned object's ``params``: build a new one, as ``with_tag`` does).
_CACHE = 512

# RFC 3261 25.1 token characters.
TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::([0-9]{1,5}))?$")
# ASCII digits only: str.isdigit() and \d also accept other scripts' digits, and
# int() fails on some of those ("²") with a plain ValueError.
DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What a quoted string must write as a quoted-pair.
_QUOTE_ESCAPE = re.compile(r'[\x00-\x09\x0b\x0c\x0e-\x1f\x7f"\\]')


def unescape(value: str) -> str:
    """Percent-decoding of URI user parts and parameters (RFC 3261 19.1.4 compares
    unescaped)."""
    if _BAD_ESCAPE.search(value):
        raise ParseError(f"bad escape in {value!r}")
    return _HEX.sub(lambda m: chr(int(m.group(1), 16)), value)


def is_token(value: str) -> bool:
    return TOKEN.fullmatch(value) is not None


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside a quoted string or ``<...>``."""
    parts: list[str] = []
    start = 0
    depth = 0
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise ParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def split_commas(value: str, *, strict: bool = False) -> list[str]:
    """The elements of a comma-separated header value (RFC 3261 7.3.1). Empty elements
    are dropped, or with ``strict`` are an error (SIP's grammar has none: RFC 4475
    3.1.2.1); a value that is wholly empty has no elements either way."""
    return list(_split_commas(value, strict))


@functools.lru_cache(maxsize=_CACHE)
def _split_commas(value: str, strict: bool) -> tuple[str, ...]:
    if "," not in value:
        return (value.strip(),) if value.strip() else ()
    parts = [part.strip() for part in split_outside_quotes(value, ",")]
    if strict and value.strip() and not all(parts):
        raise ParseError(f"empty element in {value!r}")
    return tuple(part for part in parts if part)


def unquote(value: str) -> str:
    """The content of a quoted string, escapes resolved; other values unchanged."""
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.S)
    return value


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=b;c`` (the leading ``;`` optional) to an ordered dict with lower-case names.
    Values keep their case; quoted values keep their quotes. An empty parameter
    (``;;`` or a trailing ``;``) is an error (RFC 4475 3.1.2.1)."""
    params: dict[str, str | None] = {}
    text = text.strip()
    if not text:
        return params
    if text.startswith(";"):
        text = text[1:]
    for raw in split_outside_quotes(text, ";"):
        item = raw.strip()
        if not item:
            raise ParseError(f"empty parameter in {text!r}")
        name, eq, value = item.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ParseError(f"bad parameter name {name!r}")
        value = value.strip()
        if eq and not value:
            raise ParseError(f"empty value for parameter {name!r}")
        if value.startswith('"'):
            if _closing_quote(value) != len(value) - 1:
                raise ParseError(f"junk after quoted parameter value {value!r}")
        elif value and not _param_value_ok(value):
            raise ParseError(f"bad parameter value {value!r}")
        params[name.lower()] = value if eq else None
    return params


def _param_value_ok(value: str) -> bool:
    # token, host (IPv6 reference), or a URI paramchar (which adds "()" and escapes)
    return re.fullmatch(r"[A-Za-z0-9\-.!%*_+`'~()\[\]:/&$]+", value) is not None


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:``/``sips:`` URI (RFC 3261 19.1). ``params`` names are lower case."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    @property
    def user_unescaped(self) -> str | None:
        return unescape(self.user) if self.user is not None else None

    @property
    def unescaped_params(self) -> dict[str, str | None]:
        """``params`` with escapes resolved in names and values: ``;%6C%72`` is ``;lr``
        (RFC 3261 19.1.4). ``params`` itself keeps the wire form so str() round-trips."""
        return {
            unescape(name).lower(): None if value is None else unescape(value)
            for name, value in self.params.items()
        }

    def with_params(self, **params: str | None) -> SipUri:
        return replace(self, params={**self.params, **params})

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"


_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#().\-]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+\-.]*):")


@functools.lru_cache(maxsize=_CACHE)
def parse_uri(text: str) -> SipUri:
    """Parse a SIP, SIPS or TEL URI (RFC 3966, which trunks put in From and
    P-Asserted-Identity: its number is ``user``, its host empty); anything else is a
    ParseError. Requests are only accepted for SIP URIs (``parse_message``)."""
    text = text.strip()
    match = _SCHEME.match(text)
    if not match:
        raise ParseError(f"not a URI: {text!r}")
    scheme = match.group(1).lower()
    if scheme == "tel":
        number, semicolon, params_text = text[match.end() :].partition(";")
        if not _TEL_NUMBER.fullmatch(number):
            raise ParseError(f"bad tel URI {text!r}")
        params = parse_params(";" + params_text) if semicolon else {}
        return SipUri("", number, None, None, "tel", params)
    if scheme not in ("sip", "sips"):
        raise ParseError(f"unsupported URI scheme {scheme!r}")
    rest = text[match.end() :]
    if any(ch.isspace() for ch in rest) or not rest:
        raise ParseError(f"bad URI {text!r}")
    user = password = None
    if "@" in rest:
        # The user part may hold ';', '?', ',' and '/' (RFC 4475 3.1.1.2, 3.1.1.9) but
        # neither it, the password, the parameters nor the headers hold an unescaped
        # '@' (RFC 3261 25.1): the userinfo ends at the first '@'.
        userinfo, _, rest = rest.partition("@")
        user, colon, pw = userinfo.partition(":")
        if colon:
            password = pw
            unescape(pw)
        if not user:
            raise ParseError(f"empty user in {text!r}")
        unescape(user)
    rest, question, headers = rest.partition("?")
    if question and not headers:
        raise ParseError(f"empty headers in {text!r}")
    unescape(headers)
    hostport, semicolon, params_text = rest.partition(";")
    host_match = _HOST.match(hostport)
    if not host_match:
        raise ParseError(f"bad host in {text!r}")
    host = host_match.group(1)
    port = int(host_match.group(2)) if host_match.group(2) else None
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"bad port in {text!r}")
    params = parse_params(";" + params_text) if semicolon else {}
    for name, value in params.items():
        unescape(name)
        if value is not None:
            unescape(value)
    return SipUri(host, user, password, port, scheme, params, headers)


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec with its header parameters (From, To, Contact, Route)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        display = ""
        if self.display:
            # CR and LF cannot be quoted (RFC 3261 25.1 quoted-pair) and would break the
            # header; every other control character and '"' and '\\' is escaped.
            text = self.display.replace("\r", " ").replace("\n", " ")
            display = '"' + _QUOTE_ESCAPE.sub(lambda m: "\\" + m.group(), text) + '" '
        return f"{display}<{self.uri}>{format_params(self.params)}"


@functools.lru_cache(maxsize=_CACHE)
def parse_address(text: str) -> Address:
    """Parse a name-addr (``"Bob" <sip:bob@h>;tag=x``) or an addr-spec
    (``sip:bob@h;tag=x``, whose ``;`` parameters belong to the header)."""
    text = text.strip()
    if not text:
        raise ParseError("empty address")
    display: str | None = None
    if "<" in text:
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            rest = text[end + 1 :].lstrip()
        else:
            display_part, _, rest = text.partition("<")
            display_part = display_part.strip()
            if display_part and not all(is_token(w) for w in display_part.split()):
                raise ParseError(f"bad display name {display_part!r}")
            display = display_part or None
            rest = "<" + rest
        if not rest.startswith("<") or ">" not in rest:
            raise ParseError(f"bad name-addr {text!r}")
        inner, _, after = rest[1:].partition(">")
        if inner != inner.strip():
            # RFC 4475 3.1.2.14: "< sip:... >" is malformed; accepting it would mean
            # guessing where the URI ends.
            raise ParseError(f"whitespace inside <> in {text!r}")
        uri = parse_uri(inner)
        after = after.strip()
        if after and not after.startswith(";"):
            raise ParseError(f"junk after address {text!r}")
        return Address(uri, display, parse_params(after))
    if text.startswith('"'):
        raise ParseError(f"display name without <uri> in {text!r}")
    # addr-spec: parameters after the first ';' belong to the header, not the URI,
    # except that a URI's own '?headers' are not allowed here.
    uri_text, semicolon, params_text = text.partition(";")
    if "?" in uri_text or "," in uri_text:
        raise ParseError(f"addr-spec with reserved characters must use <>: {text!r}")
    params = parse_params(";" + params_text) if semicolon else {}
    return Address(parse_uri(uri_text), None, params)


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise ParseError("unterminated quoted string")


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry (RFC 3261 20.42)."""

    transport: str  # upper case, e.g. "UDP"
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def sent_by(self) -> tuple[str, int | None]:
        return self.host.lower(), self.port

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


# "SIP" is case-insensitive like every ABNF literal (RFC 3261 7.1, 25).
_VIA = re.compile(
    r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:\s*:\s*([0-9]{1,5}))?\s*(;.*)?$",
    re.S | re.I,
)


@functools.lru_cache(maxsize=_CACHE)
def parse_via(text: str) -> Via:
    match = _VIA.match(text.strip())
    if not match:
        raise ParseError(f"bad Via {text!r}")
    port = int(match.group(3)) if match.group(3) else None
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"bad Via port {text!r}")
    params = parse_params(match.group(4) or "")
    return Via(match.group(1).upper(), match.group(2), port, params)


@functools.lru_cache(maxsize=_CACHE)
def parse_cseq(text: str) -> tuple[int, str]:
    parts = text.split()
    if len(parts) != 2 or not DIGITS.fullmatch(parts[0]) or not is_token(parts[1]):
        raise ParseError(f"bad CSeq {text!r}")
    number = int(parts[0])
    if number >= 2**31:
        raise ParseError(f"CSeq number out of range {text!r}")
    return number, parts[1]
