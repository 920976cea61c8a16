"""Streamed responses that stay streamed under ASGI.

Django serves a synchronous iterator to an ASGI server by reading all of it
first (StreamingHttpResponse warns and buffers), so a large export would sit
whole in memory. Under ASGI the rows are handed over as an async iterator
instead, pulled a batch at a time in the thread that owns the database
connection; under WSGI the plain iterator streams as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

BATCH = 200


def _batch(rows: Iterator[str]) -> str:
    return "".join(islice(rows, BATCH))


async def _pulled(rows: Iterator[str]) -> AsyncIterator[str]:
    pull = sync_to_async(_batch, thread_sensitive=True)
    while chunk := await pull(rows):
        yield chunk


def rows_streamed(request: HttpRequest, rows: Iterator[str]) -> Iterator[str] | AsyncIterator[str]:
    """The rows as the server in front of this request streams them best."""
    return _pulled(rows) if isinstance(request, ASGIRequest) else rows
