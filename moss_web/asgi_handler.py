"""Django's ASGI handler, with each request's sync work on a reused thread.

Django runs a request's sync parts (its signals, sync views, the ORM behind
sync_to_async) on a thread made for that request and discarded after it
(asgiref's ThreadSensitiveContext). Starting a thread blocks the event loop
until the thread runs, which on a busy machine costs milliseconds per request.
Here a request borrows a one-thread executor from a pool for its lifetime and
gives it back, as WSGI servers reuse their threads: still one thread per
request at a time, so the ORM's per-thread connections behave as before (each
request's connection goes back to the pool when Django closes it at the end).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

# Executors kept for reuse; more may exist while more requests run at once.
KEPT_IDLE = 64


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = (
            self._idle.pop()
            if self._idle
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(cast(dict[str, Any], scope), receive, send)
        finally:
            if len(self._idle) < KEPT_IDLE:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)
