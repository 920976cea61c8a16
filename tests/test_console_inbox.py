"""The console inbox: tabs and their counts, filters, sort, pages, service levels, unread marks,
what needs the user, presence; through the page, its fragment and the websocket."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app.console import fragments
from sessions_app.console.selectors import (
    InboxQuery,
    attention_of,
    inbox_counts,
    team_presence,
)
from sessions_app.models import Presence, Session, Team
from sessions_app.services.handoffs import session_claim
from sessions_app.services.inbox import presence_beat, session_seen_mark
from tests.conftest import ApiClient
from tests.test_console_consumer import connect as consumer_connect
from tests.test_console_views import HTMX, escalate, logged_in, session_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(api: ApiClient, make_user: Callable[..., Any]) -> Any:
    return make_user("ana", api.project, teams=("billing",))


def tab_counts(html: str) -> dict[str, int]:
    found = re.findall(r'data-tab="(\w+)"[^>]*>[^<]*<span class="count" data-count>(\d+)<', html)
    return {tab: int(count) for tab, count in found}


def customer_writes(api: ApiClient, name: str, doc_id: str, text: str) -> None:
    doc = {"id": doc_id, "text": text, "metadata": {"role": "customer", "channel": "chat"}}
    assert api.post(f"/sessions/{name}/docs", {"docs": [doc]}).status_code == 200


@pytest.fixture
def inbox(api: ApiClient, ana: Any, make_user: Callable[..., Any]) -> ApiClient:
    """For ana (team billing): one held, two routed to her or her team, one for anyone;
    one routed to ben, whom she may not see."""
    make_user("ben", api.project, teams=("technical",))
    escalate(api, "held-by-ana")
    held = session_claim(session=Session.objects.get(name="held-by-ana"), user=ana)
    # She opened it after claiming (the claim takes her there).
    session_seen_mark(session_id=held.pk, user=ana, seq=held.last_seq)
    escalate(api, "for-billing", to="team", target="billing")
    escalate(api, "for-ana", to="user", target="ana")
    escalate(api, "for-anyone")
    escalate(api, "for-ben", to="user", target="ben")
    return api


def test_each_tab_has_its_count_and_lists_its_sessions(inbox: ApiClient, ana: Any) -> None:
    client = logged_in(ana)
    page = client.get("/console/")
    html = page.content.decode()
    assert page.status_code == 200
    assert tab_counts(html) == {"mine": 1, "routed": 2, "unassigned": 1, "all": 4}
    for name in ("held-by-ana", "for-billing", "for-ana", "for-anyone"):
        assert f'data-session="{name}"' in html
    assert "for-ben" not in html

    expected = {
        "mine": ["held-by-ana"],
        "routed": ["for-billing", "for-ana"],
        "unassigned": ["for-anyone"],
    }
    for tab, names in expected.items():
        html = client.get("/console/", {"tab": tab}).content.decode()
        assert re.findall(r'data-session="([\w-]+)"', html) == names, tab
        assert f'data-tab="{tab}" aria-current="page"' in html


def test_a_supervisor_sees_every_open_session_of_the_project(
    inbox: ApiClient, make_user: Callable[..., Any]
) -> None:
    sam = make_user("sam", inbox.project, role="supervisor")
    html = logged_in(sam).get("/console/").content.decode()
    assert tab_counts(html) == {"mine": 0, "routed": 0, "unassigned": 1, "all": 5}
    assert "for-ben" in html and "held by ana" in html


def test_counts_come_from_one_query(inbox: ApiClient, ana: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        counts = inbox_counts(user=ana, query=InboxQuery())
    assert counts == {"mine": 1, "routed": 2, "unassigned": 1, "all": 4}
    assert len(queries) == 1


def test_filters_by_team_channel_and_age(inbox: ApiClient, ana: Any) -> None:
    client = logged_in(ana)
    billing = Session.objects.get(name="for-billing").queue_team
    assert billing is not None
    html = client.get("/console/", {"team": billing.pk}).content.decode()
    assert re.findall(r'data-session="([\w-]+)"', html) == ["for-billing"]

    escalate(inbox, "by-email", from_channel="email")
    html = client.get("/console/", {"channel": "email"}).content.decode()
    assert re.findall(r'data-session="([\w-]+)"', html) == ["by-email"]
    assert '<option value="email" selected>' in html

    Session.objects.filter(name="for-anyone").update(
        waiting_since=timezone.now() - timedelta(hours=2)
    )
    html = client.get("/console/", {"age": "1h"}).content.decode()
    assert re.findall(r'data-session="([\w-]+)"', html) == ["for-anyone"]


def test_sorted_by_waiting_time_and_bad_input_is_named(inbox: ApiClient, ana: Any) -> None:
    client = logged_in(ana)
    now = timezone.now()
    for minutes, name in ((30, "for-anyone"), (20, "for-ana"), (10, "for-billing")):
        Session.objects.filter(name=name).update(waiting_since=now - timedelta(minutes=minutes))
    longest = client.get("/console/", {"tab": "all"}).content.decode()
    order = re.findall(r'data-session="([\w-]+)"', longest)
    # Waiting escalations first (longest waiting first), then what the user holds.
    assert order == ["for-anyone", "for-ana", "for-billing", "held-by-ana"]
    newest = client.get("/console/", {"sort": "newest"}).content.decode()
    assert re.findall(r'data-session="([\w-]+)"', newest)[:3] == order[:3][::-1]

    bad = client.get("/console/", {"tab": "everything", "age": "forever"})
    assert bad.status_code == 422
    assert "Tab: Select a valid choice" in bad.content.decode()
    assert "Age: Select a valid choice" in bad.content.decode()


def test_a_team_of_no_project_of_the_user_is_named_not_an_empty_inbox(
    inbox: ApiClient, ana: Any, make_project: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    other, _ = make_project("Globex")
    make_user("zed", other, teams=("secret",))
    stranger = Team.objects.get(project=other, name="secret")
    client = logged_in(ana)
    for team in (stranger.pk, 424242):
        response = client.get("/console/", {"team": team})
        assert response.status_code == 422
        assert "Team: no such team in your projects" in response.content.decode()
        assert "secret" not in response.content.decode()


def test_a_page_renders_a_bounded_number_of_rows(
    api: ApiClient, ana: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fragments, "PAGE_SIZE", 2)
    for i in range(5):
        escalate(api, f"conv-{i}")
    client = logged_in(ana)
    first = client.get("/console/").content.decode()
    assert len(re.findall(r'class="queue-row', first)) == 2
    assert "Page 1 of 3" in first and 'href="?page=2"' in first
    last = client.get("/console/", {"page": 3}).content.decode()
    assert len(re.findall(r'class="queue-row', last)) == 1
    # Past the last page: the last page.
    assert "Page 3 of 3" in client.get("/console/", {"page": 9}).content.decode()


@pytest.mark.parametrize("sort", ["longest", "newest"])
def test_pages_across_projects_and_from_waiting_to_held_keep_the_queue_order(
    api: ApiClient,
    other_api: ApiClient,
    make_user: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
) -> None:
    """Waiting escalations are read project by project in index order and held sessions
    only when a page reaches them: the pages still join into one queue order."""
    monkeypatch.setattr(fragments, "PAGE_SIZE", 2)
    sam = make_user("sam", api.project, role="supervisor")
    make_user("sam", other_api.project, role="supervisor")
    now = timezone.now()
    for index in range(5):
        for owner, prefix, offset in ((api, "a", 0), (other_api, "b", 30)):
            name = f"{prefix}-{index}"
            escalate(owner, name)
            # Interleaved waiting times; two with the same time tie-break by id.
            since = now - timedelta(minutes=10 * index + offset % 20 + (index == 4) * 10)
            Session.objects.filter(name=name).update(waiting_since=since)
    for name, minutes in (("a-3", 50), ("b-1", 5), ("b-4", 20)):
        held = session_claim(session=Session.objects.get(name=name), user=sam)
        assert held.last_handoff is not None
        type(held.last_handoff).objects.filter(pk=held.last_handoff.pk).update(
            claimed_at=now - timedelta(minutes=minutes)
        )
    sessions = list(Session.objects.select_related("last_handoff"))
    waiting = [s for s in sessions if s.status == "waiting"]
    held_sessions = [s for s in sessions if s.status == "held"]
    newest = sort == "newest"

    def claimed(session: Session) -> Any:
        assert session.last_handoff is not None
        return session.last_handoff.claimed_at

    waiting.sort(key=lambda s: s.pk)
    waiting.sort(key=lambda s: s.waiting_since or now, reverse=newest)
    held_sessions.sort(key=lambda s: s.pk)
    held_sessions.sort(key=claimed, reverse=newest)
    expected = [s.name for s in waiting + held_sessions]

    client = logged_in(sam)
    listed: list[str] = []
    for page in range(1, 6):
        html = client.get("/console/", {"sort": sort, "page": str(page)}).content.decode()
        listed += re.findall(r'data-session="([\w-]+)"', html)
    assert listed == expected
    assert len(expected) == 10


def test_queries_do_not_grow_with_the_rows(
    api: ApiClient, ana: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(3):
        escalate(api, f"few-{i}")
    client = logged_in(ana)
    client.get("/console/")
    with CaptureQueriesContext(connection) as few:
        client.get("/console/")
    few_rows = len(few)
    for i in range(12):
        escalate(api, f"more-{i}")
    with django_assert_max_num_queries(few_rows):
        client.get("/console/")


def test_service_levels_colour_rows_and_mark_breaches(inbox: ApiClient, ana: Any) -> None:
    project = inbox.project
    project.sla_waiting_warn_seconds = 60
    project.sla_waiting_breach_seconds = 600
    project.save()
    now = timezone.now()
    Session.objects.filter(name="for-anyone").update(waiting_since=now - timedelta(minutes=20))
    Session.objects.filter(name="for-ana").update(waiting_since=now - timedelta(minutes=5))
    html = logged_in(ana).get("/console/").content.decode()
    breached = re.search(r'<tr [^>]*sla-breach[^>]*data-session="for-anyone".*?</tr>', html, re.S)
    assert breached and 'class="badge sla-mark">SLA breached' in breached.group(0)
    assert re.search(r'<tr [^>]*sla-warn[^>]*data-session="for-ana"', html)
    assert 'class="queue-row" data-session="for-billing"' in html
    # The browser's timer goes on from the server's timestamps and the thresholds.
    assert 'data-warn="60" data-breach="600"' in html
    assert re.search(r'data-server-now="\d+"', html)


def test_a_customer_turn_marks_a_held_session_unread_until_opened(
    inbox: ApiClient, ana: Any
) -> None:
    client = logged_in(ana)
    mine = {"tab": "mine"}
    assert "unread-mark" not in client.get("/console/", mine).content.decode()
    customer_writes(inbox, "held-by-ana", "late-1", "Any news on my refund?")
    html = client.get("/console/", mine).content.decode()
    assert 'class="queue-row unread' in html and "unread-mark" in html
    assert attention_of(user=ana).count == 3  # two routed to her, one unread

    assert client.get(session_url(inbox, "held-by-ana")).status_code == 200
    assert "unread-mark" not in client.get("/console/", mine).content.decode()
    assert attention_of(user=ana).count == 2


def test_seen_marks_only_move_forward(inbox: ApiClient, ana: Any) -> None:
    session = Session.objects.get(name="held-by-ana")
    session_seen_mark(session_id=session.pk, user=ana, seq=5)
    session_seen_mark(session_id=session.pk, user=ana, seq=2)
    assert session.seen_marks.get(user=ana).seq == 5


def test_a_cursor_past_the_session_end_marks_no_more_than_its_last_turn(
    inbox: ApiClient, ana: Any
) -> None:
    """A hand-edited polling URL: the seen mark is a bigint, and a mark past the
    session's end would hide the unread marks of turns still to come."""
    session = Session.objects.get(name="held-by-ana")
    updates = session_url(inbox, "held-by-ana", action="updates")
    for far in ("99999999999999999999", str(2**62)):
        response = logged_in(ana).get(updates, {"after_seq": far}, headers=HTMX)
        assert response.status_code == 200
        assert session.seen_marks.get(user=ana).seq == session.last_seq
    customer_writes(inbox, "held-by-ana", "late-1", "Any news on my refund?")
    assert "unread-mark" in logged_in(ana).get("/console/", {"tab": "mine"}).content.decode()


def test_links_keep_a_channel_that_holds_url_characters() -> None:
    query = InboxQuery(channel="voice&sms #2+")
    assert query.params(page=2) == "?channel=voice%26sms+%232%2B&page=2"


def test_attention_keys_change_with_each_new_item(inbox: ApiClient, ana: Any) -> None:
    before = attention_of(user=ana)
    assert {item.title for item in before.items} == {
        "Escalation routed to you: Dana",
    }
    escalate(inbox, "for-ana-2", to="user", target="ana")
    after = attention_of(user=ana)
    assert after.count == before.count + 1
    assert after.digest != before.digest
    new = {i.key for i in after.items} - {i.key for i in before.items}
    assert len(new) == 1


def test_the_title_count_is_on_the_page(inbox: ApiClient, ana: Any) -> None:
    html = logged_in(ana).get("/console/").content.decode()
    assert re.search(r'<ul id="attention" hidden data-count="2"', html)
    assert html.count("<li data-key=") == 2


def test_presence_online_away_offline_and_load(
    inbox: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    sam = make_user("sam", inbox.project, role="supervisor")
    ben = User.objects.get(username="ben")
    presence_beat(user=ana, active=True)
    presence_beat(user=ben, active=False)
    states = {p.username: (p.state, p.load) for p in team_presence(user=sam)}
    assert states == {"ana": ("online", 1), "ben": ("away", 0), "sam": ("offline", 0)}
    Presence.objects.filter(user=ana).update(beat_at=timezone.now() - timedelta(minutes=5))
    assert {p.username: p.state for p in team_presence(user=sam)}["ana"] == "offline"

    page = logged_in(sam).get("/console/").content.decode()
    assert 'hx-get="/console/presence/"' in page
    panel = logged_in(sam).get("/console/presence/", headers=HTMX).content.decode()
    assert 'data-user="ben"' in panel and 'data-presence="away"' in panel
    # An agent supervises nobody: no panel, and the fragment lists no one.
    assert "/console/presence/" not in logged_in(ana).get("/console/").content.decode()
    assert 'data-user="' not in logged_in(ana).get("/console/presence/").content.decode()


async def connect(user: Any) -> WebsocketCommunicator:
    connected, communicator = await consumer_connect(user)
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_the_socket_answers_beats_and_records_presence(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    ana = await database_sync_to_async(make_user)("ana", api.project)
    socket = await connect(ana)
    await socket.send_to(text_data=json.dumps({"beat": 1, "active": True}))
    assert await socket.receive_from() == "<!-- beat -->"
    presence = await database_sync_to_async(Presence.objects.get)(user=ana)
    assert presence.active_at is not None
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_message_with_a_lone_surrogate_is_ignored_and_the_socket_lives_on(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    """Its strings would reach PostgreSQL, which cannot hold them: the socket closed."""
    ana = await database_sync_to_async(make_user)("ana", api.project)
    socket = await connect(ana)
    for bad in (
        '{"view": "session", "project": "\\ud800", "session": "conv-1"}',
        '{"view": "queue", "channel": "\\udfff"}',
    ):
        await socket.send_to(text_data=bad)
    await socket.send_to(text_data=json.dumps({"beat": 1, "active": True}))
    assert await socket.receive_from() == "<!-- beat -->"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_session_page_hears_of_an_escalation_routed_to_its_user(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    ana = await database_sync_to_async(make_user)("ana", api.project)
    await database_sync_to_async(escalate)(api, "held")
    held = await database_sync_to_async(Session.objects.get)(name="held")
    await database_sync_to_async(session_claim)(session=held, user=ana)
    socket = await connect(ana)
    hello = {"view": "session", "project": api.project.public_id, "session": "held"}
    await socket.send_to(text_data=json.dumps(hello))
    await socket.receive_from()  # the session's update; its turns are seen now
    digest = (await database_sync_to_async(attention_of)(user=ana)).digest
    await socket.send_to(text_data=json.dumps({"attention": digest}))
    assert await socket.receive_nothing(timeout=0.5)  # the page is up to date

    await database_sync_to_async(escalate)(api, "for-ana", to="user", target="ana")
    answer = ""
    while 'id="attention"' not in answer:
        answer = await socket.receive_from(timeout=5)
    assert 'data-count="1"' in answer and "Escalation routed to you" in answer
    await socket.disconnect()


def test_a_warning_after_the_breach_is_refused(api: ApiClient) -> None:
    project = api.project
    project.sla_waiting_warn_seconds, project.sla_waiting_breach_seconds = 600, 300
    with pytest.raises(ValidationError, match="warn at or before the breach"):
        project.full_clean()
    project.sla_waiting_breach_seconds = 0  # no breach level: any warning will do
    project.full_clean()


def test_a_take_over_moves_the_session_to_the_supervisors_mine(
    inbox: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    from sessions_app.services.supervision import session_take_over

    sam = make_user("sam", inbox.project, role="supervisor")
    session_take_over(session=Session.objects.get(name="held-by-ana"), supervisor=sam)
    mine = logged_in(sam).get("/console/", {"tab": "mine"}).content.decode()
    assert re.findall(r'data-session="([\w-]+)"', mine) == ["held-by-ana"]
    assert "Handling" in mine and "held by you" in mine
    assert tab_counts(logged_in(ana).get("/console/").content.decode())["mine"] == 0
