"""The supervisors' webhooks page: endpoints and attempts of their project only."""

from __future__ import annotations

import pytest
from django.test import Client

from sessions_app.actors import Actor
from sessions_app.models import Project, WebhookAttempt
from sessions_app.services.sessions import session_open
from sessions_app.webhooks.selectors import webhook_attempts_recent, webhooks_of
from sessions_app.webhooks.services import Clients, webhook_create, webhook_deliver_due
from tests.webhook_receiver import receiver_running


@pytest.fixture
def delivered(make_project, settings) -> Project:
    """A project whose endpoint got one event, and failed another time."""
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True
    settings.MOSS_WEBHOOK_RETRY_BASE_SECONDS = 0
    project, _ = make_project("Acme")
    with receiver_running() as receiver:
        receiver.answer = lambda n: 503 if n == 1 else 200
        webhook_create(project=project, actor=Actor.system(), url=receiver.url)
        session_open(project=project, name="conv-1", actor=Actor.system())
        clients = Clients()
        while webhook_deliver_due(clients=clients) is not None:
            pass
        clients.close()
    return project


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_supervisor_sees_endpoints_and_attempts(delivered: Project, make_user) -> None:
    sam = make_user("sam", delivered, role="supervisor")
    response = login(sam).get(f"/supervise/p/{delivered.public_id}/webhooks/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/hooks/moss" in body and "enabled" in body
    assert body.count("session.created #1") == 2  # the 503, then the 200
    assert ">503<" in body and ">200<" in body
    assert "HTTP 503" in body


def test_the_subnav_links_supervisors_to_it(delivered: Project, make_user) -> None:
    sam = make_user("sam", delivered, role="supervisor")
    page = login(sam).get(f"/supervise/p/{delivered.public_id}/dashboard/")
    assert f"/supervise/p/{delivered.public_id}/webhooks/" in page.content.decode()


def test_agents_and_other_projects_get_404(delivered: Project, make_user, make_project) -> None:
    agent = make_user("ana", delivered, role="agent")
    assert login(agent).get(f"/supervise/p/{delivered.public_id}/webhooks/").status_code == 404
    other, _ = make_project("Globex")
    outsider = make_user("olga", other, role="supervisor")
    response = login(outsider).get(f"/supervise/p/{delivered.public_id}/webhooks/")
    assert response.status_code == 404
    own = login(outsider).get(f"/supervise/p/{other.public_id}/webhooks/")
    assert own.status_code == 200 and "/hooks/moss" not in own.content.decode()


def test_signed_out_visitors_are_sent_to_log_in(delivered: Project) -> None:
    response = Client().get(f"/supervise/p/{delivered.public_id}/webhooks/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_reads_cost_the_endpoints_not_the_attempts_kept(
    delivered: Project, make_project, django_assert_num_queries
) -> None:
    """Attempts are kept for the event retention (14 days by default): the page reads
    each endpoint's latest along its index, not all of them."""
    first = delivered.webhook_endpoints.get()
    second, _ = webhook_create(project=delivered, actor=Actor.system(), url="http://127.0.0.1:9/b")
    other, _ = make_project("Globex")
    outside, _ = webhook_create(project=other, actor=Actor.system(), url="http://127.0.0.1:9/c")
    for number in range(30):
        for endpoint in (first, second, outside):
            WebhookAttempt.objects.create(
                endpoint=endpoint,
                event_id=f"evt_{number}",
                event_cursor=number,
                event_type="session.created",
                attempt=1,
                status_code=200,
            )
    mine = WebhookAttempt.objects.filter(endpoint__project=delivered)
    newest = list(mine.order_by("-created_at", "-id")[:7])
    with django_assert_num_queries(3):  # the endpoints, then each one's latest
        assert webhook_attempts_recent(project=delivered, limit=7) == newest
    with django_assert_num_queries(2):
        summaries = webhooks_of(project=delivered)
    assert [(s.endpoint, s.last_attempt) for s in summaries] == [
        (first, mine.filter(endpoint=first).latest("created_at", "id")),
        (second, mine.filter(endpoint=second).latest("created_at", "id")),
    ]
