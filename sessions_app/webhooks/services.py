"""Webhook endpoints: create, delete, enable again, and deliver what is due.

Delivery is at-least-once and in cursor order per endpoint: `webhook_deliver_due`
takes one endpoint that has an event due (row lock, SKIP LOCKED, so concurrent
workers never send to the same endpoint at once), sends its next event, records
the attempt and moves the endpoint's cursor on success, all in one transaction.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from sessions_app.actors import Actor
from sessions_app.errors import InvalidInput, NotFound
from sessions_app.models import Event, Project, WebhookAttempt, WebhookEndpoint
from sessions_app.services.audit import audit_record
from sessions_app.services.event_log import EVENT_TYPES, event_payload
from sessions_app.webhooks.addresses import url_addresses, url_host, url_parse, url_pin
from sessions_app.webhooks.http import Clients, ConnectFailed, post
from sessions_app.webhooks.signing import headers_sign, secret_generate

ERROR_CHARS = 500
# What else a POST can raise: the receiver broke the protocol or the connection.
HTTP_ERRORS = (httpcore.ProtocolError, httpcore.NetworkError, httpcore.UnsupportedProtocol)


def types_check(types: list[str]) -> list[str]:
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(types))


def _room_check(project: Project) -> None:
    limit = settings.MOSS_WEBHOOK_MAX_ENDPOINTS
    if WebhookEndpoint.objects.filter(project=project).count() >= limit:
        raise InvalidInput(
            f"too many webhook endpoints: a project has at most {limit} "
            "(MOSS_WEBHOOK_MAX_ENDPOINTS); delete one first"
        )


def webhook_validate(*, project: Project, url: str, types: list[str]) -> tuple[str, list[str]]:
    """The URL and types an endpoint would be created with, or InvalidInput naming the
    problem: not http(s), an unknown type, no room left, an address refused (SSRF)."""
    parsed = url_parse(url.strip())
    clean_types = types_check(types)
    _room_check(project)
    url_addresses(parsed, timeout=settings.MOSS_WEBHOOK_TIMEOUT_SECONDS)
    return str(parsed), clean_types


def webhook_create(
    *, project: Project, actor: Actor, url: str, types: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret, which is shown only this once.

    It receives the events committed from now on (not the log's past)."""
    clean_url, clean_types = webhook_validate(project=project, url=url, types=types or [])
    with transaction.atomic():
        # The project row lock orders concurrent creations, so the limit holds.
        locked = Project.objects.select_for_update().get(pk=project.pk)
        _room_check(locked)
        secret = secret_generate()
        endpoint = WebhookEndpoint.objects.create(
            project=locked,
            url=clean_url,
            types=clean_types,
            secret=secret,
            cursor=locked.event_cursor,
        )
        audit_record(
            project=locked,
            kind="webhook_created",
            actor=actor,
            data={"webhook": endpoint.public_id, "url": endpoint.url, "types": clean_types},
        )
    return endpoint, secret


def webhook_get(*, project: Project, public_id: str, for_update: bool = False) -> WebhookEndpoint:
    endpoints = WebhookEndpoint.objects.filter(project=project, public_id=public_id)
    if for_update:
        endpoints = endpoints.select_for_update()
    endpoint = endpoints.first()
    if endpoint is None:
        raise NotFound(f"webhook {public_id!r} not found")
    return endpoint


def webhook_delete(*, project: Project, public_id: str, actor: Actor) -> None:
    """Delete an endpoint and its attempts. Waits for a delivery in flight to it."""
    with transaction.atomic():
        endpoint = webhook_get(project=project, public_id=public_id, for_update=True)
        audit_record(
            project=project,
            kind="webhook_deleted",
            actor=actor,
            data={"webhook": endpoint.public_id, "url": endpoint.url},
        )
        endpoint.delete()


def webhook_enable(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Enable a disabled endpoint again; it resumes at the event it stopped at."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.disabled_at is not None:
            locked.disabled_at = None
            locked.disabled_reason = ""
            _retry_state_clear(locked)
            locked.save()
            audit_record(
                project=locked.project,
                kind="webhook_enabled",
                actor=actor,
                data={"webhook": locked.public_id},
            )
    return locked


def webhook_disable(*, endpoint: WebhookEndpoint, actor: Actor, reason: str) -> WebhookEndpoint:
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.disabled_at is None:
            locked.disabled_at = timezone.now()
            locked.disabled_reason = reason[:ERROR_CHARS]
            locked.next_attempt_at = None
            locked.save()
            audit_record(
                project=locked.project,
                kind="webhook_disabled",
                actor=actor,
                data={"webhook": locked.public_id, "reason": locked.disabled_reason},
            )
    return locked


def webhook_attempts_prune(*, older_than_days: int | None = None) -> int:
    days = settings.MOSS_EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 0:
        raise InvalidInput("retention must be zero or more days")
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = WebhookAttempt.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# Delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    latency_ms: float | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    """What one `webhook_deliver_due` call did to one endpoint."""

    endpoint_id: int
    attempt: WebhookAttempt | None  # None: no event of its types was due, the cursor moved
    disabled: bool = False


def event_id(event: Event) -> str:
    """The public id (event_payload's `id`), sent as webhook-id."""
    return f"evt_{event.uid.hex}"


def _endpoint_claim(now: datetime) -> WebhookEndpoint | None:
    """Lock one enabled endpoint that is behind its project's log and due, skipping
    endpoints another worker holds. Endpoints with a backlog take turns."""
    return (
        WebhookEndpoint.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("project")
        .filter(disabled_at__isnull=True, cursor__lt=F("project__event_cursor"))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by(F("last_claimed_at").asc(nulls_first=True), "id")
        .first()
    )


def _next_event(endpoint: WebhookEndpoint) -> Event | None:
    events = Event.objects.filter(project_id=endpoint.project_id, cursor__gt=endpoint.cursor)
    if endpoint.types:
        events = events.filter(type__in=endpoint.types)
    return events.order_by("cursor").first()


def _post(clients: Clients, endpoint: WebhookEndpoint, event: Event, now: datetime) -> Sent:
    payload = event_payload(event)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    headers = headers_sign(
        secret=endpoint.secret, event_id=payload["id"], event_type=event.type, body=body, at=now
    )
    # One deadline for the attempt: the lookup and every address tried share it.
    timeout = settings.MOSS_WEBHOOK_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    try:
        url = url_parse(endpoint.url)
        addresses = url_addresses(url, timeout=timeout)  # again: DNS may answer otherwise now
    except InvalidInput as exc:
        return Sent(None, None, exc.message)
    started = time.perf_counter()
    error = ""
    for address in addresses:
        started = time.perf_counter()
        left = deadline - time.monotonic()
        if left <= 0:
            error = f"timed out after {timeout:g} s (no time left for {address})"
            break
        try:
            answer = post(
                clients.for_host(url_host(url)),
                url_pin(url, address),
                body=body.encode(),
                headers=headers,
                timeout=left,
            )
            return Sent(answer.status_code, answer.latency_ms, "")
        except ConnectFailed as exc:
            error = f"could not connect to {address}: {exc}"  # try its next address
        except httpcore.TimeoutException as exc:
            error = f"timed out after {timeout:g} s ({type(exc).__name__})"
            break
        except HTTP_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
    return Sent(None, (time.perf_counter() - started) * 1000, error[:ERROR_CHARS])


def _failing_cursor(endpoint: WebhookEndpoint) -> int | None:
    """The cursor of the event the endpoint's latest attempt sent (None: none is kept)."""
    return (
        WebhookAttempt.objects.filter(endpoint=endpoint)
        .order_by("-created_at")
        .values_list("event_cursor", flat=True)
        .first()
    )


def _retry_delay_seconds(failures: int) -> float:
    """Exponential backoff with jitter: half the doubled delay, plus up to that again."""
    delay = min(
        settings.MOSS_WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(failures - 1, 30),
        settings.MOSS_WEBHOOK_RETRY_MAX_DELAY_SECONDS,
    )
    return delay / 2 + random.uniform(0, delay / 2)


def _retry_state_clear(endpoint: WebhookEndpoint) -> None:
    endpoint.failures = 0
    endpoint.failing_since = None
    endpoint.next_attempt_at = None


def _failure_record(endpoint: WebhookEndpoint, sent: Sent, event: Event, now: datetime) -> bool:
    """Schedule the retry, or disable the endpoint once the retry window is spent.
    Returns whether it was disabled."""
    endpoint.failures += 1
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    window = timedelta(seconds=settings.MOSS_WEBHOOK_RETRY_WINDOW_SECONDS)
    if now - endpoint.failing_since >= window:
        outcome = f"HTTP {sent.status_code}" if sent.status_code is not None else sent.error
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"{endpoint.failures} attempts to deliver {event_id(event)} "
            f"({event.type}, cursor {event.cursor}) failed over {duration_text(window)}; "
            f"last: {outcome}"
        )[:ERROR_CHARS]
        endpoint.next_attempt_at = None
        return True
    retry_at = now + timedelta(seconds=_retry_delay_seconds(endpoint.failures))
    # The last try falls at the end of the window, not after it.
    endpoint.next_attempt_at = min(retry_at, endpoint.failing_since + window)
    return False


def duration_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


def webhook_deliver_due(*, clients: Clients) -> Delivery | None:
    """Deliver the next due event of one endpoint; None when nothing is due anywhere.

    Call it until it returns None. The endpoint's row stays locked until the
    attempt and the cursor are committed, so a receiver sees an event only
    after every earlier one of its endpoint was acknowledged (2xx); a crash
    between the receiver's 2xx and the commit sends that event again."""
    with transaction.atomic():
        endpoint = _endpoint_claim(timezone.now())
        if endpoint is None:
            return None
        endpoint.last_claimed_at = timezone.now()
        event = _next_event(endpoint)
        if event is None:
            # Nothing of its types up to the log's end (or pruned): skip ahead.
            endpoint.cursor = endpoint.project.event_cursor
            _retry_state_clear(endpoint)
            endpoint.save()
            return Delivery(endpoint_id=endpoint.pk, attempt=None)
        if endpoint.failures and _failing_cursor(endpoint) != event.cursor:
            # The event that was failing has been pruned: this one starts its own window.
            _retry_state_clear(endpoint)
        sent_at = timezone.now()
        sent = _post(clients, endpoint, event, sent_at)
        attempt = WebhookAttempt.objects.create(
            endpoint=endpoint,
            event_id=event_id(event),
            event_cursor=event.cursor,
            event_type=event.type,
            attempt=endpoint.failures + 1,
            status_code=sent.status_code,
            latency_ms=sent.latency_ms,
            error=sent.error or ("" if sent.ok else f"HTTP {sent.status_code}"),
        )
        disabled = False
        if sent.ok:
            endpoint.cursor = event.cursor
            _retry_state_clear(endpoint)
        else:
            disabled = _failure_record(endpoint, sent, event, timezone.now())
        endpoint.save()
        if disabled:
            audit_record(
                project=endpoint.project,
                kind="webhook_disabled",
                actor=Actor.system("webhook worker"),
                data={"webhook": endpoint.public_id, "reason": endpoint.disabled_reason},
            )
    return Delivery(endpoint_id=endpoint.pk, attempt=attempt, disabled=disabled)


def webhooks_next_due() -> datetime | None:
    """When the earliest scheduled retry falls (for the worker's sleep)."""
    endpoint = (
        WebhookEndpoint.objects.filter(
            disabled_at__isnull=True,
            next_attempt_at__isnull=False,
            cursor__lt=F("project__event_cursor"),
        )
        .order_by("next_attempt_at")
        .only("next_attempt_at")
        .first()
    )
    return endpoint.next_attempt_at if endpoint else None
