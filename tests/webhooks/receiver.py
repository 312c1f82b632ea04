"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread.

It records every request (method, the URL it was called on, headers, parameters), answers
as the test tells it (a status, headers and optionally a body per request; 200 and no body
by default), can hold requests unanswered until released, and notes when one event is in
flight twice at the same time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.servers import free_port

HOLD_LIMIT = 30.0  # seconds a held request waits at most


@dataclass
class Received:
    method: str
    url: str  # as the receiver was called: http://127.0.0.1:PORT/path?query
    path: str
    headers: dict[str, str]
    params: dict[str, str]  # the form (POST) or the query (GET)
    body: bytes
    status: int | None = None  # what was answered; None while held or if never answered

    @property
    def event_id(self) -> str:
        """Plivo-style events carry it as a parameter, Infobip-style (JSON) ones in a
        header."""
        return self.params.get("EventId") or self.headers.get("X-Veil-Event-Id", "")


# (status, headers) or (status, headers, body); no body is sent as an empty one.
Answer = tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]
Responder = Callable[[Received], Answer]


def ok(_request: Received) -> tuple[int, dict[str, str]]:
    return 200, {}


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    respond: Responder = ok
    delay: float = 0.0  # seconds before answering each request
    requests: list[Received] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)  # event ids in flight twice at once
    _inflight: Counter[str] = field(default_factory=Counter)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _hold: threading.Event | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/events") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # Up and down -------------------------------------------------------------

    def start(self) -> Receiver:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._server = server
        # A short poll, so that ``stop`` (which waits for the loop to notice) is quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._hold is not None:
            self._hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Holding requests ----------------------------------------------------------

    def hold(self) -> None:
        """Requests from now on wait, unanswered, until ``release``."""
        self._hold = threading.Event()

    def release(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.set()

    # Reading what came ---------------------------------------------------------

    def answered(self) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.status is not None]

    def delivered_ids(self) -> set[str]:
        """Event ids answered with a 2xx."""
        return {r.event_id for r in self.answered() if r.status is not None and r.status < 300}

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        """Block until ``predicate(self)`` holds (checked on every request); AssertionError
        after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"receiver: condition not met; got {len(self.requests)}")

    # The handler's side ----------------------------------------------------------

    def _arrived(self, request: Received) -> threading.Event | None:
        with self._cond:
            self.requests.append(request)
            if self._inflight[request.event_id] > 0:
                self.overlaps.append(request.event_id)
            self._inflight[request.event_id] += 1
            self._cond.notify_all()
            return self._hold

    def _done(self, request: Received, status: int | None) -> None:
        with self._cond:
            self._inflight[request.event_id] -= 1
            request.status = status
            self._cond.notify_all()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            source = body.decode() if self.command == "POST" else parts.query
            request = Received(
                method=self.command,
                url=f"http://127.0.0.1:{receiver.port}{self.path}",
                path=parts.path,
                headers=dict(self.headers.items()),
                params=dict(parse_qsl(source, keep_blank_values=True)),
                body=body,
            )
            hold = receiver._arrived(request)
            status: int | None = None
            try:
                if hold is not None:
                    hold.wait(HOLD_LIMIT)
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = receiver.respond(request)
                code, headers = answer[0], answer[1]
                content = answer[2] if len(answer) == 3 else b""
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                self.wfile.flush()
                status = code
            except OSError:  # the sender went away (a killed worker)
                pass
            finally:
                receiver._done(request, status)

    return Handler
