"""Websockets that fail never answer 500.

A failure before the handshake completes (Redis or the database down while the
consumer joins its groups or looks up the user) refuses it with 503; a failure
afterwards (Redis lost while the socket is open) closes it with 1013, "try
again later". Both make the console's htmx ws extension reconnect with backoff,
and the page polls over HTTP meanwhile (static/js/console.js).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from django.conf import settings
from redis.exceptions import RedisError

from moss_web.outages import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

# Redis (the channel layer) or the database: the service may be back in a moment.
UNAVAILABLE = (RedisError, OSError, *DATABASE_UNAVAILABLE)
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011


class WebsocketFailures:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        state = {"accepted": False, "closed": False}

        async def tracking_send(message: Any) -> None:
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] in ("websocket.close", "websocket.http.response.start"):
                state["closed"] = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            unavailable = isinstance(exc, UNAVAILABLE)
            if unavailable:
                logger.warning("websocket %s: service unavailable: %r", scope.get("path"), exc)
            else:
                logger.exception("websocket %s failed", scope.get("path"))
            if state["closed"]:
                return
            try:
                await _refuse_or_close(scope, send, accepted=state["accepted"], retry=unavailable)
            except Exception:  # the client is gone already
                logger.debug("websocket %s: could not close", scope.get("path"), exc_info=True)


async def _refuse_or_close(
    scope: dict[str, Any], send: ASGISendCallable, *, accepted: bool, retry: bool
) -> None:
    if accepted:
        code = TRY_AGAIN_LATER if retry else INTERNAL_ERROR
        await send({"type": "websocket.close", "code": code, "reason": ""})
    elif "websocket.http.response" in scope.get("extensions", {}):
        status = 503 if retry else 500
        body = b"live updates are unavailable; retry later" if retry else b"server error"
        headers = [(b"content-type", b"text/plain")]
        if retry:
            headers.append((b"retry-after", str(settings.MOSS_RETRY_AFTER_SECONDS).encode()))
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    else:
        # Without the denial-response extension a refused handshake is a 403.
        await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": ""})
