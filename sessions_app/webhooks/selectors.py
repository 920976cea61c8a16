"""Reads of webhook endpoints and their attempts, always within one project."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from sessions_app.models import Project, WebhookAttempt, WebhookEndpoint


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: WebhookEndpoint
    last_attempt: WebhookAttempt | None


def webhooks_of(*, project: Project) -> list[EndpointSummary]:
    """The project's endpoints, oldest first, each with its latest attempt."""
    latest = Prefetch(
        "attempts",
        queryset=WebhookAttempt.objects.order_by("-created_at", "-id")[:1],
        to_attr="latest_attempts",
    )
    endpoints = (
        WebhookEndpoint.objects.filter(project=project).prefetch_related(latest).order_by("id")
    )
    return [EndpointSummary(e, next(iter(e.latest_attempts), None)) for e in endpoints]


def webhook_attempts_recent(*, project: Project, limit: int = 50) -> QuerySet[WebhookAttempt]:
    return (
        WebhookAttempt.objects.filter(endpoint__project=project)
        .select_related("endpoint")
        .order_by("-created_at", "-id")[:limit]
    )
