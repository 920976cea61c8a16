"""The sessions list: filters, sorting, pagination, htmx partials and the project-wide search."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sessions_app.actors import Actor
from sessions_app.models import Session
from sessions_app.services.search import turns_search
from sessions_app.services.sessions import session_open
from sessions_app.supervise import selectors as supervise_selectors
from tests.supervise_history import History, history_build, times_set


@pytest.fixture
def history(db: None) -> History:
    built = history_build()
    times_set(built)
    return built


@pytest.fixture
def sam(history: History) -> Client:
    client = Client()
    client.force_login(history.users["sam"])
    return client


def names(client: Client, history: History, **params: str | int) -> list[str]:
    response = client.get(f"/supervise/p/{history.project.public_id}/", params)
    assert response.status_code == 200, response.content
    return [s.name for s in response.context["page"].object_list]


def test_filters_by_status(history: History, sam: Client) -> None:
    assert names(sam, history, status="waiting") == ["conv-2"]
    assert names(sam, history, status="resolved") == ["conv-1"]


def test_filters_by_channel_of_any_turn(history: History, sam: Client) -> None:
    assert names(sam, history, channel="email") == ["conv-1"]
    assert names(sam, history, channel="sms") == ["conv-2"]


def test_filters_by_holder_and_customer(history: History, sam: Client) -> None:
    Session.objects.filter(pk=history.conv1.pk).update(holder=history.users["ben"])
    assert names(sam, history, holder="ben") == ["conv-1"]
    assert names(sam, history, customer="cust-1") == ["conv-1"]
    assert names(sam, history, customer="nobody") == []


def test_filters_by_waiting_longer_than(history: History, sam: Client) -> None:
    # conv-2 has waited 90 minutes.
    assert names(sam, history, waiting_minutes=60) == ["conv-2"]
    assert names(sam, history, waiting_minutes=120) == []


def test_filters_by_date_range(history: History, sam: Client) -> None:
    Session.objects.filter(pk=history.conv1.pk).update(
        created_at=timezone.now() - timedelta(days=20),
        updated_at=timezone.now() - timedelta(days=10),
    )
    today = timezone.localdate()
    assert names(sam, history, date_from=today.isoformat()) == ["conv-2"]
    old = (today - timedelta(days=15)).isoformat()
    assert names(sam, history, date_to=old) == ["conv-1"]


def test_sorts_by_name_and_by_turn_count(history: History, sam: Client) -> None:
    assert names(sam, history, sort="name") == ["conv-1", "conv-2"]
    assert names(sam, history, sort="turns") == ["conv-1", "conv-2"]


def test_bad_filters_get_a_422_naming_the_problem(history: History, sam: Client) -> None:
    response = sam.get(
        f"/supervise/p/{history.project.public_id}/",
        {"waiting_minutes": "soon", "date_from": "2026-02-03", "date_to": "2026-02-01"},
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "waiting_minutes" in body and "date_to" in body


@pytest.mark.parametrize(
    ("field", "value"),
    [("date_to", "9999-12-31"), ("date_from", "0001-01-01"), ("page", "4" * 18)],
)
def test_the_ends_of_the_calendar_and_huge_pages_are_422s(
    history: History, sam: Client, field: str, value: str
) -> None:
    response = sam.get(f"/supervise/p/{history.project.public_id}/", {field: value})
    assert response.status_code == 422
    assert field in response.content.decode()


def test_paginates_25_a_page(history: History, sam: Client) -> None:
    bot = Actor.system("loader")
    for index in range(30):
        session_open(project=history.project, name=f"bulk-{index:02d}", actor=bot)
    first = sam.get(f"/supervise/p/{history.project.public_id}/", {"sort": "name"})
    assert len(first.context["page"].object_list) == 25
    assert "page=2" in first.content.decode()
    second = sam.get(f"/supervise/p/{history.project.public_id}/", {"sort": "name", "page": "2"})
    assert [s.name for s in second.context["page"].object_list][-2:] == ["conv-1", "conv-2"]


def test_the_count_is_bounded_and_pages_go_on_past_it(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list counts up to COUNT_LIMIT matches (its cost stays that of a page however
    large the project); past it the page says "more than" and Next still leads on."""
    monkeypatch.setattr(supervise_selectors, "COUNT_LIMIT", 30)
    bot = Actor.system("loader")
    for index in range(60):
        session_open(project=history.project, name=f"bulk-{index:02d}", actor=bot)
    url = f"/supervise/p/{history.project.public_id}/"
    first = sam.get(url, {"sort": "name"})
    html = first.content.decode()
    assert "Page 1 (more than 30 sessions)" in html and "page=2" in html
    listed: list[str] = []
    for number in range(1, 5):
        page = sam.get(url, {"sort": "name", "page": str(number)}).context["page"]
        listed += [s.name for s in page.object_list]
        assert page.has_next == (number < 3)
    assert listed == sorted(
        Session.objects.filter(project=history.project).values_list("name", flat=True)
    )
    # A small result is counted exactly; a page past its end is its last page.
    few = sam.get(url, {"status": "waiting", "page": "7"})
    assert few.context["page"].number == 1
    assert "1 session<" in few.content.decode()


def test_htmx_requests_get_only_the_results_partial(history: History, sam: Client) -> None:
    response = sam.get(
        f"/supervise/p/{history.project.public_id}/", {"status": "waiting"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'class="filters' not in body
    assert "conv-2" in body and "conv-1" not in body


def test_search_scores_like_the_api_and_links_to_the_turn(history: History, sam: Client) -> None:
    response = sam.get(f"/supervise/p/{history.project.public_id}/", {"q": "refund"})
    hits = response.context["hits"]
    expected = turns_search(
        session_ids=[history.conv1.pk, history.conv2.pk], query="refund", top_k=20
    ).docs
    assert [(h.session_name, h.id, h.score) for h in hits] == [
        (h.session_name, h.id, pytest.approx(h.score)) for h in expected
    ]
    assert hits[0].session_name == "conv-1"
    body = response.content.decode()
    seq = hits[0].seq
    assert f"/supervise/p/{history.project.public_id}/s/conv-1/?seq={seq}#turn-{seq}" in body


def test_search_never_reaches_another_project(history: History) -> None:
    eve = Client()
    eve.force_login(history.users["eve"])
    response = eve.get(f"/supervise/p/{history.other.public_id}/", {"q": "refund"})
    assert response.status_code == 200
    assert response.context["hits"] == []
