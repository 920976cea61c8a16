"""Django's ASGI handler, with each request's sync work on a reused thread, in one hop.

Django runs a request's sync parts (its signals, sync views, the ORM behind
sync_to_async) on a thread made for that request and discarded after it
(asgiref's ThreadSensitiveContext). Starting a thread blocks the event loop
until the thread runs, which on a busy machine costs milliseconds per request.
Here a request borrows a one-thread executor from a pool for its lifetime and
gives it back, as WSGI servers reuse their threads: still one thread per
request at a time, so the ORM's per-thread connections behave as before (each
request's connection goes back to the pool when Django closes it at the end).

A request for a sync view (every view but the event stream's long-poll and the
health check) then runs as under WSGI: the request-started signal, the middleware
chain built for sync calls, the view and the response's close, all in that thread
at once. Django's async path would hop there three times (the signal, the view,
the close) and run the chain's coroutines on the loop in between: 0.9 ms more per
API call here (README, "The request path"). Async views keep Django's async path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import FileResponse, HttpResponseBase
from django.urls import Resolver404, resolve, set_script_prefix

# Executors kept for reuse; more may exist while more requests run at once.
KEPT_IDLE = 64


# Paths longer than this are resolved each time rather than cached: a client choosing
# long paths could otherwise fill the cache with megabytes of them.
CACHED_PATH_CHARS = 256


def _view_is_async(path_info: str) -> bool:
    if len(path_info) > CACHED_PATH_CHARS:
        return _resolves_to_async(path_info)
    return _cached_view_is_async(path_info)


def _resolves_to_async(path_info: str) -> bool:
    try:
        return iscoroutinefunction(resolve(path_info).func)
    except Resolver404:
        return False  # the 404 handler is sync


_cached_view_is_async = lru_cache(maxsize=4096)(_resolves_to_async)


@receiver(setting_changed)
def _urlconf_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":  # as Django clears its own URL caches (tests)
        _cached_view_is_async.cache_clear()


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        self._sync_chain = BaseHandler()
        self._sync_chain.load_middleware(is_async=False)

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
                if _view_is_async(_path_info(scope)):
                    await self.handle(cast(dict[str, Any], scope), receive, send)
                else:
                    await self._handle_in_thread(cast(dict[str, Any], scope), receive, send)
        finally:
            if len(self._idle) < KEPT_IDLE:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def _handle_in_thread(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGIHandler.handle for a sync view: what it does in three hops, in one."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        def respond() -> tuple[HttpResponseBase, bool]:
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            response = (
                self._sync_chain.get_response(request)
                if request is not None
                else cast(HttpResponseBase, error_response)
            )
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
            # A response whose body is at hand is closed here (request_finished: this
            # thread's database connection); a streamed one once it is sent.
            closed = not response.streaming
            if closed:
                response.close()
            return response, closed

        try:
            response, closed = await sync_to_async(respond, thread_sensitive=True)()
            with contextlib.suppress(asyncio.CancelledError):  # the client went away
                await self.send_response(response, send)
            if not closed:
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()


def _path_info(scope: MutableMapping[str, Any]) -> str:
    """The path Django resolves, as ASGIRequest computes it."""
    script_name = get_script_prefix(scope)
    return str(scope["path"]).removeprefix(script_name) if script_name else str(scope["path"])
