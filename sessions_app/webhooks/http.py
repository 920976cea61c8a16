"""The HTTP side of a delivery: one POST to a checked address, within one deadline.

httpcore's timeouts, like httpx's, bound each network operation, not a request: a
receiver that sends its answer a byte every few seconds would hold a delivery
thread, and its endpoint's row lock, for hours. So every operation of an attempt
(connect, TLS, write, read) is given at most what is left of the attempt's deadline
(`DeadlineBackend`), and the attempt fails once it is spent.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore
import httpx

from sessions_app.webhooks.addresses import PinnedRequest

_deadline: ContextVar[float | None] = ContextVar("webhook_deadline", default=None)


@contextmanager
def _deadline_within(seconds: float) -> Iterator[None]:
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The operation's timeout, cut to what is left of the attempt's deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, each operation bounded by the attempt's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, left, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class Clients:
    """One connection pool per receiving host, so a kept-alive (TLS) connection is only
    reused for the host it was opened for: deliveries connect to a checked address,
    and two hosts may share one."""

    def __init__(self) -> None:
        self._pools: dict[str, httpcore.ConnectionPool] = {}
        # httpx's TLS defaults (certifi, SSL_CERT_FILE), as before deliveries used httpcore.
        self._ssl_context = httpx.create_ssl_context()

    def for_host(self, host: str) -> httpcore.ConnectionPool:
        pool = self._pools.get(host)
        if pool is None:
            if len(self._pools) >= 64:
                self.close()
            pool = httpcore.ConnectionPool(
                ssl_context=self._ssl_context, network_backend=DeadlineBackend()
            )
            self._pools[host] = pool
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class ConnectFailed(Exception):
    """No connection to this address: the next one may answer."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    latency_ms: float


def post(
    pool: httpcore.ConnectionPool,
    pinned: PinnedRequest,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Answer:
    """POST the body to the pinned address and return the status; the receiver's body is
    not read. Raises ConnectFailed, httpcore.TimeoutException once `timeout` seconds
    have passed since the call, or another httpcore error."""
    started = time.perf_counter()
    sent_headers = {
        **headers,
        "host": pinned.host_header,
        "content-length": str(len(body)),
    }
    extensions = {
        "sni_hostname": pinned.sni_hostname,
        "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout},
    }
    with _deadline_within(timeout):
        try:
            with pool.stream(
                "POST",
                str(pinned.url),
                headers=list(sent_headers.items()),
                content=body,
                extensions=extensions,
            ) as response:
                return Answer(response.status, (time.perf_counter() - started) * 1000)
        except httpcore.ConnectError as exc:
            raise ConnectFailed(str(exc)) from exc
