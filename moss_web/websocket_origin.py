"""Which pages may open a websocket here: the page's own origin, or a trusted one.

The rule is the one Django's CSRF check applies to a form POST: the Origin header
must equal the scheme, host and port the handshake was served on (the Host header,
itself checked against ALLOWED_HOSTS), or be listed in CSRF_TRUSTED_ORIGINS.
Channels' AllowedHostsOriginValidator compares host names only, so a page on
http://localhost:9999 could open the console's socket on 127.0.0.1:8000.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger(__name__)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def _secure(scope: dict[str, Any]) -> bool:
    if scope.get("scheme") == "wss":
        return True
    # The same proxy header Django trusts for HTTP requests, when one is configured.
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
        value = _header(scope, header)
        return value is not None and value.split(",", 1)[0].strip() == secure_value
    return False


def websocket_origins_allowed(scope: dict[str, Any]) -> list[str]:
    """The origins a handshake served with this scope accepts."""
    origins = [
        # Channels' patterns spell a subdomain wildcard ".example.com", Django's "*.example.com".
        origin.replace("://*.", "://.", 1)
        for origin in settings.CSRF_TRUSTED_ORIGINS
    ]
    host = _header(scope, b"host")
    if host:
        domain, _ = split_domain_port(host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            origins.insert(0, f"{'https' if _secure(scope) else 'http'}://{host}")
    return origins


class WebsocketOriginValidator(OriginValidator):
    """Refuses a websocket handshake unless its Origin is allowed (scheme, host and port)."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("WebsocketOriginValidator only guards websocket connections")
        origin = _header(scope, b"origin")
        allowed = websocket_origins_allowed(scope)
        parsed = urlparse(origin) if origin else None
        if parsed is not None and any(self.match_allowed_origin(parsed, p) for p in allowed):
            return await self.application(scope, receive, send)
        logger.warning(
            "websocket refused: Origin %r is not one of %s (add it to CSRF_TRUSTED_ORIGINS "
            "if a page there should reach this server)",
            origin,
            allowed,
        )
        return await WebsocketDenier()(scope, receive, send)
