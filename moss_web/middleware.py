"""Middleware of our own: WhiteNoise made usable in an async middleware chain, and
Django's middleware with their hooks run on the event loop rather than in threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp import middleware as csp_middleware
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise 6 is sync-only, and one sync-only middleware makes Django run the
    whole chain, views included, in a thread per request: the event stream's async
    long-poll would then hold that thread for its whole wait. This one serves static
    files the same way and passes every other request on without leaving the loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(get_response, *args, **kwargs)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        return await get_response(request)


class InlineHooks(MiddlewareMixin):
    """Django's MiddlewareMixin runs process_request and process_response in a thread
    under ASGI, two thread hops per middleware per request (16 for our chain). These
    hooks only read the request and set attributes or headers, with no I/O, so here
    they run on the event loop; the sync chain (WSGI, the test client) is unchanged.
    Subclasses whose response hook can do I/O say when in `response_needs_thread`."""

    def response_needs_thread(self, request: HttpRequest) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            response = process_request(request)
        get_response = cast(Callable[[HttpRequest], Awaitable[HttpResponseBase]], self.get_response)
        response = response or await get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is None:
            return response
        if self.response_needs_thread(request):
            return await sync_to_async(process_response, thread_sensitive=True)(request, response)
        return process_response(request, response)  # type: ignore[no-any-return]


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CSPMiddleware(InlineHooks, csp_middleware.CSPMiddleware):
    pass


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    def response_needs_thread(self, request: HttpRequest) -> bool:
        # Only a modified session is saved (to the database).
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """Also its view hook: Django would run it in a thread, for every view."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            self.process_view = self._process_view_inline  # type: ignore[method-assign,assignment]

    async def _process_view_inline(
        self, request: HttpRequest, callback: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        # The body was read before the chain ran (ASGIHandler), so a form token is at hand.
        return super().process_view(request, callback, args, kwargs)


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    def response_needs_thread(self, request: HttpRequest) -> bool:
        # Storing messages may load and save the session; untouched storage does nothing.
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    pass
