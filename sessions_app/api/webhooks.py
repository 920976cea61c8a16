"""API v1 webhook endpoints: register (the secret is shown once), list, delete."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from sessions_app.api.auth import request_actor, request_key
from sessions_app.api.fields import NoNul, XAgent
from sessions_app.api.schemas import (
    WITH_BODY,
    WebhookCreatedOut,
    WebhookCreateIn,
    WebhookListOut,
    responses,
)
from sessions_app.models import WebhookAttempt, WebhookEndpoint
from sessions_app.webhooks import services
from sessions_app.webhooks.selectors import webhooks_of

router = Router(tags=["webhooks"])


def _attempt_out(attempt: WebhookAttempt | None) -> dict[str, Any] | None:
    if attempt is None:
        return None
    return {
        "at": attempt.created_at,
        "event_id": attempt.event_id,
        "event_type": attempt.event_type,
        "event_cursor": attempt.event_cursor,
        "attempt": attempt.attempt,
        "ok": attempt.ok,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    }


def _webhook_out(endpoint: WebhookEndpoint, last_attempt: WebhookAttempt | None) -> dict[str, Any]:
    return {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "types": endpoint.types,
        "enabled": endpoint.is_enabled,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "cursor": endpoint.cursor,
        "failures": endpoint.failures,
        "next_attempt_at": endpoint.next_attempt_at,
        "last_attempt": _attempt_out(last_attempt),
    }


@router.post("/webhooks", response=responses({201: WebhookCreatedOut}, *WITH_BODY))
def create_webhook(
    request: HttpRequest, payload: WebhookCreateIn, agent: XAgent = ""
) -> Status[dict[str, Any]]:
    """Register an endpoint for the events committed from now on. The secret that
    signs its deliveries is in this answer only."""
    endpoint, secret = services.webhook_create(
        project=request_key(request).project,
        actor=request_actor(request, agent),
        url=payload.url,
        types=payload.types,
    )
    return Status(201, {**_webhook_out(endpoint, None), "secret": secret})


@router.get("/webhooks", response=responses({200: WebhookListOut}))
def list_webhooks(request: HttpRequest) -> dict[str, Any]:
    """The project's endpoints (no secrets): enabled or why not, and the latest attempt."""
    summaries = webhooks_of(project=request_key(request).project)
    return {"webhooks": [_webhook_out(s.endpoint, s.last_attempt) for s in summaries]}


@router.delete("/webhooks/{webhook_id}", response=responses({204: None}, 404))
def delete_webhook(request: HttpRequest, webhook_id: NoNul, agent: XAgent = "") -> Status[None]:
    services.webhook_delete(
        project=request_key(request).project,
        public_id=webhook_id,
        actor=request_actor(request, agent),
    )
    return Status(204, None)
