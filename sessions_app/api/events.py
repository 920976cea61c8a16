"""API v1 event stream: what bots hear back, by long-poll."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from sessions_app.api.fields import NoNul
from sessions_app.api.schemas import EventPageOut, responses
from sessions_app.errors import InvalidInput
from sessions_app.models import ApiKey
from sessions_app.services.event_stream import After, EventPage, events_wait

router = Router(tags=["events"])


def _after(value: str | None) -> After:
    if value is None or value == "":
        return None
    if value == "now":
        return "now"
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # cursors are bigints
        raise InvalidInput("after must be a cursor (0 or more) returned as next_cursor, or 'now'")
    return int(value)


def _types(value: str | None) -> list[str] | None:
    types = [item.strip() for item in (value or "").split(",") if item.strip()]
    return types or None


@router.get("/events", response=responses({200: EventPageOut}))
async def list_events(
    request: HttpRequest,
    after: NoNul | None = None,
    types: NoNul | None = None,
    session: NoNul | None = None,
    wait: float = 0,
    limit: int = 100,
) -> EventPage:
    """The project's events after the cursor `after`, oldest first. With `wait` (seconds,
    at most 30) and nothing to return yet, answers as soon as an event commits, or with
    an empty page when the time is up. `types` is comma-separated; `session` a name."""
    api_key: ApiKey = request.auth  # type: ignore[attr-defined]
    return await events_wait(
        project=api_key.project,
        after=_after(after),
        types=_types(types),
        session_name=session,
        wait=wait,
        limit=limit,
    )
