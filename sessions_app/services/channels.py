"""Channel lists kept on write: each session's and each project's turn channels, ever.

The supervisor's channel filter and its choices read these instead of
scanning every turn; handoffs keep the channels around their point for the
dashboard's channel pairs. A list only grows (a deleted turn leaves its channel),
and the project's row is written only when a channel is new to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection

from sessions_app.models import Handoff, Session, Turn


def channels_of(metadatas: Iterable[dict[str, Any]]) -> set[str]:
    return {m["channel"] for m in metadatas if isinstance(m.get("channel"), str) and m["channel"]}


def channels_record(*, session: Session, channels: set[str]) -> bool:
    """Add new channels to the (locked, about to be saved) session and to its project.

    Returns whether the session's list changed, so the caller saves the field.
    """
    new = sorted(channels - set(session.channels))
    if not new:
        return False
    session.channels = sorted(set(session.channels) | set(new))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE sessions_app_project
            SET channels = ARRAY(SELECT DISTINCT c FROM unnest(channels || %s::text[]) c ORDER BY c)
            WHERE id = %s AND NOT channels @> %s::text[]
            """,
            [new, session.project_id, new],
        )
    return True


def _channel(metadata: dict[str, Any] | None) -> str:
    value = (metadata or {}).get("channel")
    return value if isinstance(value, str) else ""


def handoff_channel_before(*, session: Session) -> str:
    """The channel of the session's last turn, for a handoff recorded now."""
    last = Turn.objects.filter(session=session).order_by("-seq").values("metadata").first()
    return _channel(last["metadata"]) if last else ""


def handoffs_channel_after(*, session: Session, first: Turn) -> None:
    """Handoff points with no turn after them yet get the channel of the first one written."""
    Handoff.objects.filter(
        session=session, channel_after__isnull=True, last_seq__lt=first.seq
    ).update(channel_after=_channel(first.metadata))
