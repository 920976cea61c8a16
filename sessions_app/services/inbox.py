"""The console inbox's writes: how far a user has read a session, and their presence."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from sessions_app.models import Presence, SessionSeen


def session_seen_mark(*, session_id: int, user: User, seq: int) -> None:
    """The user has seen the session up to `seq`; a mark only moves forward. The caller
    reached the session through access.py."""
    marks = SessionSeen.objects.filter(session_id=session_id, user=user)
    if marks.update(seq=Greatest(F("seq"), seq), seen_at=timezone.now()):
        return
    SessionSeen.objects.bulk_create(
        [SessionSeen(session_id=session_id, user=user, seq=seq)], ignore_conflicts=True
    )
    # A concurrent first mark won the insert: move it forward too.
    marks.filter(seq__lt=seq).update(seq=seq)


def presence_beat(*, user: User, active: bool, now: datetime | None = None) -> None:
    """A heartbeat from one of the user's console tabs; `active` when it is being used."""
    now = now or timezone.now()
    values: dict[str, object] = {"beat_at": now}
    if active:
        values["active_at"] = now
    Presence.objects.update_or_create(user=user, defaults=values)
