"""Live events over the Channels layer, sent only after the data is committed.

Payloads carry ids, never rendered content: each consumer re-reads what its
own user may see and renders that.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app.models import Session

logger = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def session_group(session_id: int) -> str:
    return f"session.{session_id}"


def _send(groups: list[str], payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, payload)
        except Exception:
            # The change is committed already; a lost notification is caught up on
            # reconnect, so it must not fail the request.
            logger.exception("could not publish %s to %s", payload.get("kind"), group)


def session_changed(*, session: Session, kind: str, data: dict[str, Any] | None = None) -> None:
    payload = {
        "type": "session.changed",
        # One id per change: a consumer gets it through the project's group and the
        # session's, and must tell that double from a second edit that looks the same.
        "change": uuid.uuid4().hex,
        "kind": kind,
        "project_id": session.project_id,
        "session_id": session.pk,
        "session_name": session.name,
        "status": session.status,
        "version": session.version,
        "last_seq": session.last_seq,
        **(data or {}),
    }
    groups = [project_group(session.project_id), session_group(session.pk)]
    transaction.on_commit(lambda: _send(groups, payload))
