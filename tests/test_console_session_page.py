"""The session page's tools: notes, canned responses, the reply limit, supervisor actions,
the customer panel and marked search results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.models import ApiKey, AuditEvent, CannedResponse, Session, Turn
from sessions_app.services import console as console_services
from tests.conftest import ApiClient
from tests.test_console_views import HTMX, escalate, logged_in, session_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(api: ApiClient, make_user: Callable[..., Any]) -> Any:
    return make_user("ana", api.project, teams=("billing",))


@pytest.fixture
def held(api: ApiClient, ana: Any) -> Any:
    escalate(api)
    client = logged_in(ana)
    assert client.post(session_url(api, action="claim")).status_code == 302
    return client


def test_the_actions_are_buttons_that_open_their_forms(api: ApiClient, held: Any) -> None:
    html = held.get(session_url(api)).content.decode()
    assert html.count('<details name="session-action" class="action">') == 3
    assert "<summary" in html and "Hand back to a bot" in html


def test_a_note_is_stored_internal_and_shown_marked(api: ApiClient, held: Any) -> None:
    response = held.post(session_url(api, action="note"), {"text": "VIP, be gentle"}, headers=HTMX)

    assert response.status_code == 200
    note = Turn.objects.get(internal=True)
    assert note.text == "VIP, be gentle" and note.metadata["author"] == "ana"
    page = held.get(session_url(api)).content.decode()
    assert "Private note" in page and "VIP, be gentle" in page
    assert api.get("/sessions/conv-1/docs").json()["docs"][-1]["id"] != note.doc_id


def test_a_reply_over_the_limit_is_refused_not_cut(api: ApiClient, held: Any) -> None:
    limit = settings.MOSS_MAX_TEXT_CHARS
    page = held.get(session_url(api)).content.decode()
    assert f'data-max-chars="{limit}"' in page
    assert "maxlength" not in page.split('id="reply"')[1].split("</section>")[0]

    response = held.post(
        session_url(api, action="reply"),
        {"text": "x" * (limit + 4000), "channel": "chat"},
        headers=HTMX,
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert f"is {limit + 4000} characters long; the limit is {limit}" in body
    assert "Nothing was sent" in body
    assert not Turn.objects.filter(metadata__role="agent").exists()


def test_canned_responses_are_listed_filled_and_escaped(api: ApiClient, held: Any) -> None:
    CannedResponse.objects.create(
        project=api.project,
        shortcut="late",
        title="Refund late",
        text='Hi {{customer_name}}, sorry <script>alert("x")</script>',
    )
    html = held.get(session_url(api)).content.decode()
    assert 'data-shortcut="late"' in html
    assert 'data-text="Hi Dana, sorry &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in html
    assert '<script>alert("x")' not in html


def test_a_supervisor_takes_over_a_held_session(
    api: ApiClient, held: Any, make_user: Callable[..., Any]
) -> None:
    sue = make_user("sue", api.project, role="supervisor")
    client = logged_in(sue)
    page = client.get(session_url(api)).content.decode()
    assert "Take over from ana" in page and "Release to the queue" in page
    assert "Take over" not in held.get(session_url(api)).content.decode()

    response = client.post(session_url(api, action="take-over"), {"note": "ana is off"})

    assert response.status_code == 302
    session = Session.objects.get(name="conv-1")
    assert session.holder_label == "sue"
    assert AuditEvent.objects.get(kind="taken_over").data["taken_from"] == "ana"


def test_an_agent_cannot_take_over(
    api: ApiClient, held: Any, make_user: Callable[..., Any]
) -> None:
    bo = make_user("bo", api.project)
    Session.objects.filter(name="conv-1").update()  # bo may not even open it
    response = logged_in(bo).post(session_url(api, action="take-over"), {"note": ""})
    assert response.status_code == 404
    assert Session.objects.get(name="conv-1").holder_label == "ana"


def test_the_customer_panel_lists_their_other_sessions(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    for name in ("conv-1", "conv-old"):
        api.post("/sessions", {"name": name, "metadata": {"customer_id": "cus-7"}})
    api.post("/sessions", {"name": "conv-else", "metadata": {"customer_id": "cus-8"}})
    api.post(
        "/sessions/conv-old/docs",
        {"docs": [{"id": "o1", "text": "The refund for order 5 was late", "metadata": {}}]},
    )
    escalate(api)
    sue = make_user("sue", api.project, role="supervisor")

    html = logged_in(sue).get(session_url(api)).content.decode()

    panel = html.split('id="customer"')[1].split("</section>")[0]
    assert "cus-7" in panel and "conv-old" in panel and "conv-else" not in panel
    assert "<mark>refund</mark>" in panel.lower() or "<mark>Refund</mark>" in panel


def test_the_customer_panel_reads_a_bounded_number_of_sessions(
    api: ApiClient, make_user: Callable[..., Any]
) -> None:
    """However long the customer's history: the panel's statements all carry a LIMIT."""
    for n in range(4):
        api.post("/sessions", {"name": f"conv-old-{n}", "metadata": {"customer_id": "cus-7"}})
    api.post("/sessions", {"name": "conv-1", "metadata": {"customer_id": "cus-7"}})
    escalate(api)
    sue = make_user("sue", api.project, role="supervisor")
    membership = sue.memberships.get(project=api.project)
    session = Session.objects.get(project=api.project, name="conv-1")
    with (
        patch.object(console_services, "CUSTOMER_SEARCH_SESSIONS", 2),
        CaptureQueriesContext(connection) as queries,
    ):
        panel = console_services.console_customer(session=session, membership=membership)
    assert panel is not None and len(panel.sessions) == 4
    reads = [q["sql"] for q in queries if "customer_id" in q["sql"]]
    assert reads and all("LIMIT" in sql for sql in reads), reads


def test_search_marks_the_words_that_matched_and_escapes_the_rest(
    api: ApiClient, held: Any
) -> None:
    api.post(
        "/sessions/conv-1/docs",
        {"docs": [{"id": "t9", "text": "<b>refund</b> sent by courier", "metadata": {}}]},
    )
    response = held.get(
        session_url(api) + "?q=courier", headers={**HTMX, "HX-Target": "search-results"}
    )
    html = response.content.decode()
    assert "<mark>courier</mark>" in html
    assert "&lt;b&gt;" in html and "<b>refund" not in html


def _update(api: ApiClient, user: Any, after_seq: int, **before: Any) -> str:
    from sessions_app.console.fragments import session_update_html, session_watch

    watched = session_watch(user=user, project_public_id=api.project.public_id, name="conv-1")
    assert watched is not None
    update = session_update_html(
        user=user, watched=watched, after_seq=after_seq, after_version=1, **before
    )
    assert update is not None
    return update.html


def test_the_relevant_panel_is_sent_again_when_the_customer_writes(
    api: ApiClient, held: Any, ana: Any
) -> None:
    bot_turn = {"id": "b9", "text": "Checking the refund", "metadata": {"role": "bot"}}
    api.post("/sessions/conv-1/docs", {"docs": [bot_turn]})
    assert 'id="relevant"' not in _update(api, ana, after_seq=3)

    customer = {"id": "c9", "text": "Still no refund today", "metadata": {"role": "customer"}}
    api.post("/sessions/conv-1/docs", {"docs": [customer]})
    html = _update(api, ana, after_seq=4)

    assert '<section id="relevant"' in html and 'hx-swap-oob="true"' in html
    assert "<mark>refund</mark>" in html


def test_the_holder_is_told_who_reassigned_or_released_it(
    api: ApiClient, held: Any, ana: Any, make_user: Callable[..., Any]
) -> None:
    sue = make_user("sue", api.project, role="supervisor")
    client = logged_in(sue)
    response = client.post(
        session_url(api, action="reassign"), {"to": "team:billing", "note": "billing knows"}
    )
    assert response.status_code == 302
    html = _update(api, ana, after_seq=3, held_before=True)
    assert "sue reassigned this session to team billing (billing knows)" in html
    assert "Claim this session to reply" in html
    assert AuditEvent.objects.get(kind="reassigned").actor_user == sue


def test_release_and_a_bad_reassign_target(
    api: ApiClient, held: Any, make_user: Callable[..., Any]
) -> None:
    sue = make_user("sue", api.project, role="supervisor")
    client = logged_in(sue)

    bad = client.post(session_url(api, action="reassign"), {"to": "team:nope"}, headers=HTMX)
    assert bad.status_code == 422
    assert Session.objects.get(name="conv-1").holder_label == "ana"

    assert client.post(session_url(api, action="release"), {"note": ""}).status_code == 302
    session = Session.objects.get(name="conv-1")
    assert session.status == "waiting" and session.queue_team is None
    released = client.post(session_url(api, action="release"), {"note": ""}, headers=HTMX)
    assert released.status_code == 409
    assert "not held by anyone" in released.content.decode()


def test_the_timeline_marks_a_private_note(
    api: ApiClient, held: Any, make_user: Callable[..., Any]
) -> None:
    held.post(session_url(api, action="note"), {"text": "Refund approved by finance"})
    sue = make_user("sue", api.project, role="supervisor")

    html = logged_in(sue).get(f"/supervise/p/{api.project.public_id}/s/conv-1/").content.decode()

    assert "tl-internal" in html and "Private note" in html
    assert "Refund approved by finance" in html
    # Once, right after the audit event that added it.
    assert html.count("Refund approved by finance") == 1
    assert html.index('data-kind="note.added"') < html.index("tl-internal")


def test_a_bots_handoff_is_marked_with_its_key_whatever_name_it_gives(
    api: ApiClient, ana: Any, make_user: Callable[..., Any]
) -> None:
    """from_agent is free text: a bot may call itself "ana". The thread and the supervisor's
    as-received page mark a handoff made with an API key, as they mark a bot's turns."""
    escalate(api, from_agent="ana")
    prefix = ApiKey.objects.get(project=api.project).prefix
    client = logged_in(ana)
    html = client.get(session_url(api)).content.decode()
    handoff = html[html.index('<li id="handoff-1"') :]
    handoff = handoff[: handoff.index("</li>")]
    assert "<strong>ana</strong>" in handoff and f"via API key {prefix}" in handoff

    assert client.post(session_url(api, action="claim")).status_code == 302
    client.post(session_url(api, action="resolve"), {"note": "refund confirmed"})
    html = client.get(session_url(api)).content.decode()
    mine = html[html.index('<li id="handoff-2"') :]
    assert "via API key" not in mine[: mine.index("</li>")]  # a signed-in person's own

    supervisor = logged_in(make_user("sam", api.project, role="supervisor"))
    url = f"/supervise/p/{api.project.public_id}/s/conv-1/received/1/"
    facts = supervisor.get(url).content.decode().split("</section>")[0]
    assert "ana" in facts and f"via API key {prefix}" in facts
