"""The console's websocket accepts a handshake only from the page's own origin (scheme, host and
port) or from CSRF_TRUSTED_ORIGINS, checked with Channels' communicator against the real app."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from moss_web.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def handshake(
    user: Any,
    *,
    origin: str | None,
    host: str = "127.0.0.1:8000",
    scheme: str = "ws",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bool:
    headers = [
        (b"host", host.encode()),
        (b"cookie", await database_sync_to_async(_session_cookie)(user)),
    ]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/console/", headers=[*headers, *extra])
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return bool(connected)


@pytest.fixture
def ana(make_user: Any) -> Any:
    return make_user("ana")


async def test_the_page_own_origin_is_accepted(ana: Any) -> None:
    assert await handshake(ana, origin="http://127.0.0.1:8000")


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:9999",  # an allowed host name, but another site on this machine
        "http://127.0.0.1:9999",  # same host, another port
        "https://127.0.0.1:8000",  # same host and port, another scheme
        "http://localhost:8000",  # same port, another allowed host name
        "http://evil.example",
        "null",
    ],
)
async def test_another_scheme_host_or_port_is_refused(ana: Any, origin: str) -> None:
    assert not await handshake(ana, origin=origin)


async def test_a_handshake_without_origin_is_refused(ana: Any) -> None:
    assert not await handshake(ana, origin=None)


async def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_origin(ana: Any) -> None:
    assert not await handshake(ana, origin="http://evil.example:8000", host="evil.example:8000")


async def test_behind_tls_the_https_origin_is_the_page_own(ana: Any, settings: Any) -> None:
    assert await handshake(ana, origin="https://127.0.0.1:8000", scheme="wss")
    assert not await handshake(ana, origin="http://127.0.0.1:8000", scheme="wss")
    # A proxy that terminates TLS says so in the header Django trusts for HTTP requests.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    forwarded = ((b"x-forwarded-proto", b"https"),)
    assert await handshake(ana, origin="https://127.0.0.1:8000", extra=forwarded)
    assert not await handshake(ana, origin="http://127.0.0.1:8000", extra=forwarded)


async def test_csrf_trusted_origins_are_accepted_with_their_port(ana: Any, settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example.com", "https://*.example.org"]
    assert await handshake(ana, origin="https://console.example.com")
    assert await handshake(ana, origin="https://console.example.com:443")
    assert await handshake(ana, origin="https://eu.example.org")
    assert not await handshake(ana, origin="https://console.example.com:8443")
    assert not await handshake(ana, origin="http://console.example.com")
