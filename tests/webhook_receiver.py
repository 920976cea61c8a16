"""A real HTTP receiver for webhook tests: a threaded http.server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() when the request was read

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Records every POST; answers with `answer(request_number)` (200 unless set)."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}/hooks/moss"
        self.port = port
        self.received: list[Received] = []
        self.answer: Callable[[int], int] = lambda _number: 200
        self.delay_seconds = 0.0
        self.trickle_seconds = 0.0  # set: the answer goes out a byte at a time, this far apart
        self.in_flight = 0
        self.most_in_flight = 0  # requests handled at once, at most
        self._condition = threading.Condition()

    def record(self, received: Received) -> int:
        with self._condition:
            self.received.append(received)
            number = len(self.received)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._condition.notify_all()
        return self.answer(number)

    def answered(self) -> None:
        with self._condition:
            self.in_flight -= 1

    def wait_for(
        self, done: Callable[[list[Received]], bool], timeout: float = 30
    ) -> list[Received]:
        """Wait until done(received so far) holds; fail after `timeout` seconds."""
        with self._condition:
            if not self._condition.wait_for(lambda: done(self.received), timeout=timeout):
                raise AssertionError(
                    f"receiver: condition not met in {timeout} s; got "
                    f"{[r.headers.get('x-moss-event-type') for r in self.received]}"
                )
            return list(self.received)

    def unique(self) -> list[Received]:
        """What a receiver that deduplicates by webhook-id keeps: each id's first copy."""
        seen: set[str] = set()
        kept = []
        for received in list(self.received):
            if received.id not in seen:
                seen.add(received.id)
                kept.append(received)
        return kept


def _handler(receiver_ref: list[Receiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as most receivers

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            receiver = receiver_ref[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.record(Received(headers, body, time.monotonic()))
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            receiver.answered()
            if receiver.trickle_seconds:
                self._trickle(
                    f"HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n".encode(), receiver
                )
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def _trickle(self, answer: bytes, receiver: Receiver) -> None:
            try:
                for at in range(len(answer)):
                    self.wfile.write(answer[at : at + 1])
                    self.wfile.flush()
                    time.sleep(receiver.trickle_seconds)
            except OSError:
                self.close_connection = True  # the sender gave up

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver_running(host: str = "127.0.0.1") -> Iterator[Receiver]:
    ref: list[Receiver] = []
    server = ThreadingHTTPServer((host, 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ref[0]
    finally:
        server.shutdown()
        server.server_close()
