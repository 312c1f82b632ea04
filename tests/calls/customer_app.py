"""A customer's number-masking application for the tests: a real HTTP server on
127.0.0.1 in a thread that answers Veil's Infobip-style callbacks as the test scripts it
and records every request (callbacks and status reports)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


@dataclass
class Answer:
    """What one callback gets: ``body`` (JSON) after ``delay`` seconds, with ``status``."""

    body: Any
    status: int = 200
    delay: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CustomerApp:
    url: str
    # Per path, the answers to give in order (the last one repeats).
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, *answers: Answer) -> str:
        self.answers[path] = list(answers)
        return self.url + path

    def received(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 30) -> list[Request]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.received(path)
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} requests to {path}"
            time.sleep(0.05)

    def _answer(self, path: str) -> Answer:
        with self.lock:
            queue = self.answers.get(path)
            if not queue:
                return Answer({}, status=200)  # a status report's receipt
            return queue.pop(0) if len(queue) > 1 else queue[0]


@contextmanager
def customer_app() -> Iterator[CustomerApp]:
    port = free_port()
    app = CustomerApp(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with app.lock:
                app.requests.append(
                    Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            answer = app._answer(self.path)
            time.sleep(answer.delay)
            data = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # Veil gave up waiting

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
