"""The console's websocket: live queue rows and live session views as HTML fragments.

The browser (htmx's ws extension) says what it shows once the socket opens,
and again on every reconnect: {"view": "queue"} or {"view": "session",
"project", "session", "after_seq", "version"}. The consumer answers with what
the page missed, then with a fragment after every "session.changed" event,
re-reading from the database what its own user may see. It keeps the thread
cursor it has sent, so a turn is never sent twice on one socket. When the
channel layer fails (Redis down), moss_web/websocket_failures.py closes the
socket for a retry and the page polls the same fragments meanwhile.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User

from sessions_app import events
from sessions_app.access import sign_in_current
from sessions_app.console import fragments
from sessions_app.console.selectors import InboxQuery
from sessions_app.services.inbox import presence_beat, session_seen_mark
from sessions_app.validation import (
    project_id_is_valid,
    session_name_is_valid,
    unpaired_surrogate_at,
)

logger = logging.getLogger(__name__)

# Presence is a database write: a steady beat refreshes it this often (it expires after
# console.selectors.PRESENCE_TIMEOUT); a change between active and away is written at once.
PRESENCE_WRITE_SECONDS = 10
# How long the socket trusts its sign-in before reading it again: a user signed out,
# deactivated or whose password changed stops receiving within this.
SIGN_IN_CHECK_SECONDS = 5


def _seqs(value: Any) -> list[int]:
    """Sequence numbers from a live event (ours, through the channel layer)."""
    return [seq for seq in value if isinstance(seq, int)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400
        return 0


class ConsoleConsumer(AsyncWebsocketConsumer):
    user: User
    joined: list[str]
    view: str = ""
    queue_ids: set[int]
    watched: fragments.WatchedSession | None = None
    after_seq: int = 0
    after_version: int = 0
    # Whether the page shows the watched session as held by this user.
    held: bool | None = None
    # Whether it shows this user a supervisor's actions on someone else's hold.
    supervising: bool | None = None
    last_event: Any = None  # the last change id handled (events.session_changed)
    query: InboxQuery | None = None
    # The digest of the attention list the page has; None: the page shows none.
    attention_sent: str | None = None
    beat_active: bool | None = None
    beat_written: float = 0.0
    sign_in_checked: float = 0.0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.sign_in_checked = time.monotonic()
        self.queue_ids = set()
        project_ids = await database_sync_to_async(fragments.user_project_ids)(user=user)
        self.joined = [events.project_group(pid) for pid in sorted(project_ids)]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        try:
            for group in getattr(self, "joined", []):
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:
            # Redis is down: its group memberships expire on their own.
            logger.info("console socket: could not leave its groups: %r", exc)

    async def _signed_in(self) -> bool:
        """Whether the sign-in this socket opened with still holds (read again every
        SIGN_IN_CHECK_SECONDS); the socket closes once it does not."""
        now = time.monotonic()
        if now - self.sign_in_checked < SIGN_IN_CHECK_SECONDS:
            return True
        session = self.scope.get("session")
        current = await database_sync_to_async(sign_in_current)(
            session_key=getattr(session, "session_key", None), user_id=self.user.pk
        )
        if not current:
            await self.close(code=4401)
            return False
        self.sign_in_checked = now
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self._signed_in():
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(message, dict) or unpaired_surrogate_at(message) is not None:
            return  # a lone surrogate ("\\ud800") cannot reach the database
        if "beat" in message:
            await self._beat(message)
        elif "attention" in message:
            # The page shows an attention list (title count, notifications): keep it current.
            self.attention_sent = str(message["attention"])
            await self._send_attention()
        elif message.get("view") == "queue":
            self.view = "queue"
            self.query, _ = fragments.inbox_query_parse(message)
            await self._send_queue()
        elif message.get("view") == "session":
            await self._watch(message)

    async def _beat(self, message: dict[str, Any]) -> None:
        """The page's heartbeat: answered at once (the page's proof of a live socket), and
        recorded as presence, at most every PRESENCE_WRITE_SECONDS unless it changed."""
        await self.send(text_data="<!-- beat -->")
        active = message.get("active") is True
        now = time.monotonic()
        if active != self.beat_active or now - self.beat_written >= PRESENCE_WRITE_SECONDS:
            self.beat_active, self.beat_written = active, now
            await database_sync_to_async(presence_beat)(user=self.user, active=active)

    async def _watch(self, message: dict[str, Any]) -> None:
        project, name = str(message.get("project", "")), str(message.get("session", ""))
        if not (project_id_is_valid(project) and session_name_is_valid(name)):
            # No such project or session (and a NUL would not reach the database).
            await self._send_notice("session-notice", "This session is not available.")
            return
        if self.watched is None or (self.watched.project_public_id, self.watched.name) != (
            project,
            name,
        ):
            watched = await database_sync_to_async(fragments.session_watch)(
                user=self.user, project_public_id=project, name=name
            )
            if watched is None:
                await self._send_notice("session-notice", "This session is not available.")
                return
            self.view = "session"
            self.watched = watched
            group = events.session_group(watched.pk)
            if group not in self.joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.joined.append(group)
            # A new watch starts from what the page has; afterwards our own cursor is ahead.
            self.after_seq = _int(message.get("after_seq"))
            self.after_version = _int(message.get("version"))
            self.held = message.get("holds") == "1"
            self.supervising = message.get("supervising") == "1"
        await self._send_session_update()

    async def session_changed(self, event: dict[str, Any]) -> None:
        # A watched session's events come through its project group and its own group.
        key = event.get("change")
        if key == self.last_event or not await self._signed_in():
            return
        self.last_event = key
        if self.view == "queue":
            await self._send_queue(event)
            return
        if self.watched is not None and event.get("session_id") == self.watched.pk:
            await self._send_session_update(event)
        await self._send_attention()

    async def _send_attention(self) -> None:
        """What needs this user, when it changed and the page shows it (it said so)."""
        if self.attention_sent is None:
            return
        html, digest = await database_sync_to_async(fragments.attention_html)(user=self.user)
        if digest != self.attention_sent:
            self.attention_sent = digest
            await self.send(text_data=html)

    async def _send_queue(self, event: dict[str, Any] | None = None) -> None:
        html, ids = await database_sync_to_async(fragments.queue_html)(
            user=self.user, query=self.query
        )
        if event and event.get("kind") == "claimed" and event.get("session_id") in self.queue_ids:
            # A row this user saw went to someone else: say who took it.
            html += await database_sync_to_async(fragments.claimed_notice_html)(
                user=self.user, session_id=event["session_id"]
            )
        self.queue_ids = ids
        await self.send(text_data=html)

    async def _send_session_update(self, event: dict[str, Any] | None = None) -> None:
        assert self.watched is not None
        event = event or {}
        update = await database_sync_to_async(fragments.session_update_html)(
            user=self.user,
            watched=self.watched,
            after_seq=self.after_seq,
            after_version=self.after_version,
            held_before=self.held,
            supervising_before=self.supervising,
            edited=_seqs(event.get("edited")),
            deleted=_seqs(event.get("deleted")),
        )
        if update is None:
            # Someone else claimed an escalation this user could open only while it waited.
            claimed = await database_sync_to_async(fragments.claimed_notice_html)(
                user=self.user,
                session_id=self.watched.pk,
                notice_id="session-notice",
                suffix=" This session is no longer available to you.",
            )
            if claimed:
                await self.send(text_data=claimed)
            else:
                await self._send_notice("session-notice", "This session is no longer available.")
            await self.channel_layer.group_discard(
                events.session_group(self.watched.pk), self.channel_name
            )
            self.watched = None
            return
        if update.last_seq > self.after_seq:
            # Turns shown live in an open session are read: no unread mark, no notification.
            await database_sync_to_async(session_seen_mark)(
                session_id=self.watched.pk, user=self.user, seq=update.last_seq
            )
        self.after_seq, self.after_version = update.last_seq, update.version
        self.held = update.holds
        self.supervising = update.supervising
        await self.send(text_data=update.html)

    async def _send_notice(self, notice_id: str, message: str) -> None:
        html = await database_sync_to_async(fragments.notice_html)(
            notice_id=notice_id, message=message, level="error"
        )
        await self.send(text_data=html)
