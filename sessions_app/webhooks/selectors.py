"""Reads of webhook endpoints and their attempts, always within one project."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from sessions_app.models import Project, WebhookAttempt, WebhookEndpoint


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: WebhookEndpoint
    last_attempt: WebhookAttempt | None


def webhooks_of(*, project: Project) -> list[EndpointSummary]:
    """The project's endpoints, oldest first, each with its latest attempt: one step of
    the (endpoint, created_at) index each, whatever the attempts kept."""
    latest = (
        WebhookAttempt.objects.filter(endpoint=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    endpoints = list(
        WebhookEndpoint.objects.filter(project=project)
        .annotate(latest_attempt_id=Subquery(latest))
        .order_by("id")
    )
    attempts = WebhookAttempt.objects.in_bulk(
        [e.latest_attempt_id for e in endpoints if e.latest_attempt_id is not None]
    )
    return [EndpointSummary(e, attempts.get(e.latest_attempt_id)) for e in endpoints]


def webhook_attempts_recent(*, project: Project, limit: int = 50) -> list[WebhookAttempt]:
    """The project's latest attempts, newest first. Each endpoint's latest `limit` are read
    along its (endpoint, created_at) index and merged: a project has at most
    MOSS_WEBHOOK_MAX_ENDPOINTS endpoints, and may keep many attempts of each."""
    attempts = [
        attempt
        for endpoint in WebhookEndpoint.objects.filter(project=project)
        for attempt in endpoint.attempts.order_by("-created_at", "-id")[:limit]
    ]
    attempts.sort(key=lambda attempt: (attempt.created_at, attempt.id), reverse=True)
    return attempts[:limit]
