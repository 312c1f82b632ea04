"""SIP messages (RFC 3261 section 7): parsing, building and stream framing. Sans-I/O.

A message is parsed once, leniently where RFC 3261 allows (compact names, folded lines,
any case, extra whitespace) and strictly where a wrong guess would misroute a call
(start line, Via, CSeq, Call-ID, From/To, Content-Length).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from veil.sip.errors import ParseError
from veil.sip.grammar import (
    DIGITS,
    TOKEN,
    Address,
    SipUri,
    Via,
    parse_address,
    parse_cseq,
    parse_uri,
    parse_via,
    split_commas,
)

# RFC 3261 7.3.3 and the IANA registry: compact form -> canonical name.
COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}
_CANONICAL = {
    name.lower(): name
    for name in [
        *COMPACT.values(),
        "CSeq",
        "Max-Forwards",
        "Record-Route",
        "Route",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Remote-Party-ID",
        "User-Agent",
        "Server",
        "Allow",
        "Accept",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Reason",
        "Expires",
        "RSeq",
        "RAck",
        "Retry-After",
        "Warning",
        "Timestamp",
    ]
}
# Headers whose values may contain commas that do not separate elements (RFC 3261 7.3.1).
_NOT_COMMA_LISTS = frozenset(
    {
        "www-authenticate",
        "proxy-authenticate",
        "authorization",
        "proxy-authorization",
        "date",
        "retry-after",
        "subject",
        "user-agent",
        "server",
        "warning",
        "timestamp",
    }
)
SINGLE = frozenset({"call-id", "cseq", "from", "to", "max-forwards", "content-length"})
MAX_MESSAGE = 65_535
_METHOD = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# The SIP-Version literal is case-insensitive (RFC 3261 7.1).
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9][0-9]) (.*)$", re.I | re.S)
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+\-.]*):")


def canonical(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    lower = name.lower()
    if lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower, name)


@functools.lru_cache(maxsize=1024)
def _key(name: str) -> str:
    """The lookup key of a header name: canonical, lower case."""
    return canonical(name).lower()


class Headers:
    """Ordered, case-insensitive header fields. Compact names are stored expanded."""

    __slots__ = ("_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical(n), v) for n, v in items]
        self._keys: list[str] = [n.lower() for n, _ in self._items]  # parallel to _items

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._keys

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _key(name)
        try:
            return self._items[self._keys.index(key)][1]
        except ValueError:
            return default

    def raw_values(self, name: str) -> list[str]:
        key = _key(name)
        return [item[1] for k, item in zip(self._keys, self._items, strict=True) if k == key]

    def values(self, name: str) -> list[str]:
        """All elements of a header, comma lists split and repeated fields joined."""
        raw = self.raw_values(name)
        if _key(name) in _NOT_COMMA_LISTS:
            return raw
        return [element for value in raw for element in split_commas(value)]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical(name), value))
        self._keys.append(_key(name))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical(name), value))
        self._keys.insert(0, _key(name))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one (kept where the first one was)."""
        key = _key(name)
        try:
            index = self._keys.index(key)
        except ValueError:
            self.add(name, value)
            return
        self.remove(name)
        self._items.insert(index, (canonical(name), value))
        self._keys.insert(index, key)

    def remove(self, name: str) -> None:
        key = _key(name)
        if key not in self._keys:
            return
        kept = [(k, item) for k, item in zip(self._keys, self._items, strict=True) if k != key]
        self._keys = [k for k, _ in kept]
        self._items = [item for _, item in kept]

    def copy(self) -> Headers:
        copy = Headers()
        copy._items = list(self._items)
        copy._keys = list(self._keys)
        return copy

    def __eq__(self, other: object) -> bool:
        """Same fields in the same order; names compare case-insensitively."""
        if not isinstance(other, Headers):
            return NotImplemented
        return _folded(self._items) == _folded(other._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _folded(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in items]


@dataclass(slots=True)
class Message:
    headers: Headers
    body: bytes

    # The fields every transaction and dialog needs, parsed on demand.
    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise ParseError("missing Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        value = self.headers.get("CSeq")
        if value is None:
            raise ParseError("missing CSeq")
        return parse_cseq(value)

    @property
    def from_(self) -> Address:
        return _address(self.headers, "From")

    @property
    def to(self) -> Address:
        return _address(self.headers, "To")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.values("Via")
        if not values:
            raise ParseError("missing Via")
        return parse_via(values[0])

    @property
    def contact(self) -> Address | None:
        values = self.headers.values("Contact")
        if not values or values[0] == "*":
            return None
        return parse_address(values[0])

    def addresses(self, name: str) -> list[Address]:
        return [parse_address(v) for v in self.headers.values(name)]

    def _serialize_headers(self, out: list[str]) -> None:
        # Content-Length always states the body's real length; it stays where it was so
        # that a parsed message serializes back to the same field order.
        length = f"Content-Length: {len(self.body)}\r\n"
        for name, value in self.headers:
            if name.lower() != "content-length":
                out.append(f"{name}: {value}\r\n")
            elif length:
                out.append(length)
                length = ""
        out.append(length + "\r\n")


def _address(headers: Headers, name: str) -> Address:
    value = headers.get(name)
    if value is None:
        raise ParseError(f"missing {name}")
    return parse_address(value)


@dataclass(slots=True)
class Request(Message):
    method: str = "INVITE"
    uri: SipUri = field(default_factory=lambda: SipUri("invalid"))

    def __bytes__(self) -> bytes:
        out = [f"{self.method} {self.uri} SIP/2.0\r\n"]
        self._serialize_headers(out)
        return "".join(out).encode() + self.body


@dataclass(slots=True)
class Response(Message):
    status: int = 200
    reason: str = "OK"

    def __bytes__(self) -> bytes:
        out = [f"SIP/2.0 {self.status} {self.reason}\r\n"]
        self._serialize_headers(out)
        return "".join(out).encode() + self.body


# The first empty line ends the head; bare LF line ends are tolerated there. The body
# is opaque octets (mpart01's binary part holds bare LFs and CRs, RFC 4475 3.1.1.11).
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Head and body."""
    match = _BLANK_LINE.search(data)
    if match is None:
        raise ParseError("no blank line after the headers")
    return data[: match.start()], data[match.end() :]


def _header_lines(head: str) -> list[str]:
    """Unfold continuation lines (RFC 3261 7.3.1)."""
    lines: list[str] = []
    for line in re.split(r"\r?\n", head):
        if "\r" in line:
            # A bare CR is no line end here but might be one to the next hop.
            raise ParseError(f"bare CR in {line!r}")
        if line[:1] in (" ", "\t"):
            if not lines:
                raise ParseError("continuation line before the start line")
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def parse_message(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one message. On UDP (``stream=False``) a Content-Length shorter than the
    datagram's body truncates the body and a longer one is an error (RFC 3261 18.3)."""
    # Keep-alive CRLFs may precede a message on a stream.
    data = data.lstrip(b"\r\n")
    if len(data) > MAX_MESSAGE:
        raise ParseError("message too large")
    head_bytes, body = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("header section is not UTF-8") from exc
    lines = _header_lines(head)
    start, header_lines = lines[0], lines[1:]
    headers = Headers()
    for line in header_lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not TOKEN.fullmatch(name):
            raise ParseError(f"bad header line {line!r}")
        headers.add(name, value.strip())
    length_text = headers.get("Content-Length")
    if length_text is not None:
        if not DIGITS.fullmatch(length_text):
            raise ParseError(f"bad Content-Length {length_text!r}")
        length = int(length_text)
        if length > len(body):
            raise ParseError("Content-Length larger than the body")
        body = body[:length]
    elif stream:
        raise ParseError("missing Content-Length on a stream")
    message = _start_line(start, headers, body)
    _check(message)
    return message


def _start_line(start: str, headers: Headers, body: bytes) -> Request | Response:
    if start[:4].upper() == "SIP/":
        match = _STATUS_LINE.match(start)
        if not match:
            raise ParseError(f"bad status line {start!r}")
        return Response(headers, body, int(match.group(1)), match.group(2))
    # Exactly one SP between the three elements and none after (RFC 4475 3.1.2.8-10).
    parts = start.split(" ")
    if len(parts) != 3:
        raise ParseError(f"bad request line {start!r}")
    method, uri_text, version = parts
    if not _METHOD.fullmatch(method):
        raise ParseError(f"bad method {method!r}")
    if version.upper() != "SIP/2.0":
        status = 505 if _VERSION.fullmatch(version) else 400
        raise ParseError(f"unsupported version {version!r}", status=status)
    scheme = _URI_SCHEME.match(uri_text)
    if scheme and scheme.group(1).lower() not in ("sip", "sips"):
        # Well formed but unusable here: 416, not 400 (RFC 4475 3.3.2, 3.3.3).
        raise ParseError(f"unsupported URI scheme {scheme.group(1)!r}", status=416)
    uri = parse_uri(uri_text)
    if uri.headers:
        # A Request-URI must not carry headers (RFC 3261 19.1.1; RFC 4475 3.1.2.11
        # allows 400). Honouring them would let a peer inject fields.
        raise ParseError(f"headers in the Request-URI {uri_text!r}")
    return Request(headers, body, method, uri)


def _check(message: Request | Response) -> None:
    """The mandatory headers (RFC 3261 8.1.1) parse and agree, and so do the fields
    later layers read (every Via, Contact, Route, Record-Route): a message that would
    fail there is refused here, where a 400 can still be sent."""
    for name in sorted(SINGLE):  # sorted: the same error for the same message
        if len(message.headers.raw_values(name)) > 1:
            raise ParseError(f"more than one {name} header")
    # Each property parses its field, raising ParseError.
    _ = (message.call_id, message.from_, message.to, message.top_via)
    method = message.cseq[1]
    for name in ("Via", "Contact", "Route", "Record-Route"):
        for raw in message.headers.raw_values(name):
            for value in split_commas(raw, strict=True):
                if name == "Via":
                    parse_via(value)
                elif not (name == "Contact" and value == "*"):
                    parse_address(value)
    if isinstance(message, Request) and method != message.method and message.method != "ACK":
        raise ParseError("CSeq method does not match the request method")
    max_forwards = message.headers.get("Max-Forwards")
    if max_forwards is not None and not (
        DIGITS.fullmatch(max_forwards) and int(max_forwards) < 256
    ):
        raise ParseError(f"bad Max-Forwards {max_forwards!r}")


class StreamFramer:
    """Splits a TCP byte stream into messages by Content-Length (RFC 3261 18.3)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The complete messages now available. Raises ParseError when the stream cannot
        be framed (the connection must then be closed)."""
        self._buffer += data
        messages: list[bytes] = []
        while True:
            # Skip keep-alive CRLFs (RFC 5626 3.5.1).
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE:
                    raise ParseError("header section too large")
                return messages
            total = end + 4 + _stream_length(bytes(self._buffer[:end]))
            if total > MAX_MESSAGE:
                raise ParseError("message too large")
            if len(self._buffer) < total:
                return messages
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]


def _stream_length(head: bytes) -> int:
    """The one Content-Length of a head on a stream, wherever it is and however it is
    spelt (RFC 3261 18.3: it alone frames the message, so any doubt is fatal)."""
    values = []
    # Unfolded logical lines; anything else wrong in the head is parse_message's to
    # answer with a 400, not a reason to drop the connection.
    for line in re.split(r"\r\n(?![ \t])", head.decode("latin-1"))[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in ("content-length", "l"):
            values.append(" ".join(value.split()))
    if not values:
        raise ParseError("missing Content-Length on a stream")
    if len(values) > 1:
        raise ParseError("more than one Content-Length on a stream")
    if not DIGITS.fullmatch(values[0]):
        raise ParseError(f"bad Content-Length {values[0]!r}")
    return int(values[0])


def parse_partial(data: bytes) -> Request | None:
    """As much of a broken request as a 400 needs (Via, From, To, Call-ID, CSeq), or
    None when not even that is readable. Lenient where parse_message is strict: a
    missing empty line, extra SP in the request line, any SIP version."""
    data = data.lstrip(b"\r\n")
    match = _BLANK_LINE.search(data)
    head = data[: match.start()] if match else data
    try:
        lines = _header_lines(head.decode("utf-8", "replace"))
    except ParseError:
        return None
    parts = lines[0].split()
    if len(parts) < 3 or not _VERSION.fullmatch(parts[-1]) or not _METHOD.fullmatch(parts[0]):
        return None
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and TOKEN.fullmatch(name.strip()):
            name = canonical(name.strip())
            if name in ("Via", "From", "To", "Call-ID", "CSeq"):
                headers.add(name, value.strip())
    try:
        request = Request(headers, b"", parts[0], SipUri("invalid"))
        _ = (request.top_via, request.call_id, request.cseq)
    except ParseError:
        return None
    if not (headers.get("From") and headers.get("To")):
        return None
    return request


def response_to(
    request: Request, status: int, reason: str, *, to_tag: str | None = None
) -> Response:
    """A response with the headers RFC 3261 8.2.6.2 copies from the request."""
    headers = Headers()
    for value in request.headers.raw_values("Via"):
        headers.add("Via", value)
    to = request.headers.get("To") or ""
    if to_tag and status > 100 and not _has_tag(to):
        to = f"{to};tag={to_tag}"
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", request.headers.get("CSeq") or "")
    if status == 100 and (timestamp := request.headers.get("Timestamp")):
        headers.add("Timestamp", timestamp)
    return Response(headers, b"", status, reason)


def _has_tag(to: str) -> bool:
    try:
        return parse_address(to).tag is not None
    except ParseError:  # a broken request's To: guess, so as never to add a second tag
        return ";tag=" in re.sub(r"\s", "", to.lower())


REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}


def reason_for(status: int) -> str:
    return REASONS.get(status, REASONS.get(status // 100 * 100, "Unknown"))
