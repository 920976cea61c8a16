"""Webhooks in Django admin: created through the service with the secret shown once,
enabled and disabled by actions, deleted with an audit record; attempts read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from sessions_app.actors import Actor
from sessions_app.models import AuditEvent, Project, WebhookAttempt, WebhookEndpoint
from sessions_app.services.projects import project_create
from sessions_app.services.sessions import session_open
from sessions_app.webhooks.services import Clients, webhook_create, webhook_deliver_due
from tests.webhook_receiver import receiver_running

PUBLIC_URL = "https://93.184.216.34/hooks"


@pytest.fixture
def project(db: None) -> Project:
    return project_create(name="Acme")[0]


@pytest.fixture
def operator(db: None) -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "unused")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def attempt(project: Project, settings) -> WebhookAttempt:
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True
    with receiver_running() as receiver:
        receiver.answer = lambda _n: 500
        webhook_create(project=project, actor=Actor.system(), url=receiver.url)
        session_open(project=project, name="conv-1", actor=Actor.system())
        clients = Clients()
        webhook_deliver_due(clients=clients)
        clients.close()
    return WebhookAttempt.objects.get()


@pytest.mark.parametrize("model", ["webhookendpoint", "webhookattempt"])
def test_lists_are_searchable(operator: Client, attempt: WebhookAttempt, model: str) -> None:
    url = f"/admin/sessions_app/{model}/"
    assert operator.get(url).status_code == 200
    assert operator.get(url, {"q": "127.0.0.1"}).context["cl"].result_count == 1


def test_an_endpoint_created_in_the_admin_shows_its_secret_once(
    operator: Client, project: Project
) -> None:
    response = operator.post(
        "/admin/sessions_app/webhookendpoint/add/",
        {"project": project.pk, "url": PUBLIC_URL, "types": ["turn.added", "session.escalated"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.types) == (PUBLIC_URL, ["turn.added", "session.escalated"])
    shown = [str(m) for m in response.context["messages"]]
    assert any(endpoint.secret in m for m in shown)
    page = operator.get(f"/admin/sessions_app/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    assert endpoint.secret not in page.content.decode()
    assert AuditEvent.objects.filter(kind="webhook_created", actor_label="operator").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "url must be an http or https URL"),
        ("http://127.0.0.1:9000/", "is a loopback address"),
    ],
)
def test_the_add_form_refuses_what_the_api_refuses(
    operator: Client, project: Project, url: str, message: str
) -> None:
    response = operator.post(
        "/admin/sessions_app/webhookendpoint/add/", {"project": project.pk, "url": url}
    )
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_disable_and_enable_actions(operator: Client, project: Project) -> None:
    endpoint, _ = webhook_create(project=project, actor=Actor.system(), url=PUBLIC_URL)
    changelist = "/admin/sessions_app/webhookendpoint/"
    operator.post(changelist, {"action": "disable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None
    assert endpoint.disabled_reason == "disabled by operator in admin"
    operator.post(changelist, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None and endpoint.disabled_reason == ""


def test_deleting_an_endpoint_is_audited(operator: Client, project: Project) -> None:
    endpoint, _ = webhook_create(project=project, actor=Actor.system(), url=PUBLIC_URL)
    operator.post(f"/admin/sessions_app/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"})
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(kind="webhook_deleted", actor_label="operator").exists()


def test_attempts_are_read_only(operator: Client, attempt: WebhookAttempt) -> None:
    assert operator.get("/admin/sessions_app/webhookattempt/add/").status_code == 403
    page = operator.get(f"/admin/sessions_app/webhookattempt/{attempt.pk}/change/")
    assert page.status_code == 200 and "HTTP 500" in page.content.decode()
    operator.post(f"/admin/sessions_app/webhookattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert WebhookAttempt.objects.filter(pk=attempt.pk).exists()
