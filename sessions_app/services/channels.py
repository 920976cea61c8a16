"""Channel lists kept on write: each session's and each project's turn channels, ever.

The supervisor's channel filter and its choices read these instead of
scanning every turn. A list only grows (a deleted turn leaves its channel),
and the project's row is written only when a channel is new to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection

from sessions_app.models import Session


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
