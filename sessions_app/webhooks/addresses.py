"""Which URLs may receive webhooks.

Only http(s). Unless MOSS_WEBHOOK_ALLOW_PRIVATE is set, a host that resolves to
a loopback, private, link-local, shared, multicast or reserved address is refused,
so a project key cannot make the server call into its own network (SSRF). The
check runs at registration and again at every delivery, and the delivery then
connects to the address that was checked, so a DNS answer that changes between
the two (DNS rebinding) gains nothing.

A lookup is waited for at most the caller's timeout: the system resolver may retry
for half a minute, and getaddrinfo cannot be interrupted, so it runs on a thread of
its own (`_lookups`) and an abandoned one finishes there in the background.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from sessions_app.errors import InvalidInput

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A lookup stuck in a resolver ties a thread up until the resolver gives up (about
# 30 s). One lookup per host runs at a time, and later askers wait on it, so a host
# that never answers holds one thread, not one per attempt: other hosts' lookups are
# not queued behind it.
_lookups = ThreadPoolExecutor(max_workers=64, thread_name_prefix="webhook-dns")
_running: dict[tuple[str, int], Future[list[Any]]] = {}
_running_lock = threading.Lock()


def _lookup(host: str, port: int) -> Future[list[Any]]:
    key = (host, port)
    with _running_lock:
        running = _running.get(key)
        if running is not None:
            return running
        lookup = _lookups.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        _running[key] = lookup

    def done(finished: Future[list[Any]]) -> None:
        with _running_lock:
            if _running.get(key) is finished:
                del _running[key]

    lookup.add_done_callback(done)  # outside the lock: it runs at once if already done
    return lookup


class AddressRefused(InvalidInput):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def url_parse(url: str) -> httpx.URL:
    """An http(s) URL with a host, or InvalidInput naming what is wrong."""
    if not url:
        raise InvalidInput("url is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"url is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "none"
        raise InvalidInput(f"url must be an http or https URL, got scheme {scheme!r}")
    if not parsed.host:
        raise InvalidInput("url has no host")
    if parsed.userinfo:
        # Never sent (a delivery connects to the checked address), and shown wherever the
        # URL is: receivers authenticate deliveries by their signature instead.
        raise InvalidInput(
            "url must not carry a user name or password; verify deliveries by their "
            "webhook-signature header"
        )
    return parsed


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:10.0.0.1 is 10.0.0.1."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_is_public(address: IPAddress) -> bool:
    address = _unmapped(address)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _describe(address: IPAddress) -> str:
    """'a loopback address', 'a private address', …"""
    address = _unmapped(address)
    kind = "non-public"
    for flag in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{flag}"):
            kind = flag.replace("_", "-")
            break
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    lookup = _lookup(host, port)
    try:
        infos = lookup.result(timeout=timeout)
    except LookupTimeout as exc:
        raise InvalidInput(f"url host {host!r} did not resolve within {timeout:g} s") from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"url host {host!r} does not resolve") from exc
    # Drop an IPv6 scope ("fe80::1%eth0") before parsing.
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )


def url_addresses(url: httpx.URL, *, timeout: float) -> list[IPAddress]:
    """The addresses a delivery to `url` may connect to, every one of them checked,
    found within `timeout` seconds (InvalidInput after that).

    Raises AddressRefused when any address is not public and private ones are not
    allowed (one bad answer among several is enough: the connection could use it)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url_host(url)
    addresses = _resolve(host, port, timeout=timeout)
    if not settings.MOSS_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not address_is_public(address):
                where = (
                    f"url address {address} is"
                    if _literal(host) is not None
                    else f"url host {host!r} resolves to {address},"
                )
                raise AddressRefused(
                    f"{where} {_describe(address)}; webhooks may only reach "
                    "public addresses (MOSS_WEBHOOK_ALLOW_PRIVATE is off)"
                )
    return addresses


@dataclass(frozen=True)
class PinnedRequest:
    """Where to connect (the checked address) and what to send as Host and TLS name."""

    url: httpx.URL
    host_header: str
    sni_hostname: str


def url_host(url: httpx.URL) -> str:
    """The host as DNS and TLS know it (an international name in its xn-- form)."""
    return url.raw_host.decode("ascii")


def url_pin(url: httpx.URL, address: IPAddress) -> PinnedRequest:
    return PinnedRequest(
        url=url.copy_with(host=str(address)),
        host_header=url.netloc.decode("ascii"),
        sni_hostname=url_host(url),
    )
