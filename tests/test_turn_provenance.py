"""A turn written through an API key is marked as such wherever a human reads it.

A bot may send role=agent, author=ana and X-Agent: ana; the console thread, its
search and relevant-context hits, the supervisor timeline, the as-received
thread and the exports still say "via API key <prefix>". Ana's own console
reply carries no such mark.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps

from sessions_app.models import ApiKey, Turn
from tests.conftest import ApiClient
from tests.test_console_views import escalate, logged_in, session_url

pytestmark = pytest.mark.django_db

IMPERSONATION = {
    "id": "fake-ana",
    "text": "Your refund was approved by me personally.",
    "metadata": {"channel": "chat", "role": "agent", "author": "ana", "device": "console"},
}
BADGE = 'class="badge via-key"'


@pytest.fixture
def prefix(api: ApiClient) -> str:
    return ApiKey.objects.get(project=api.project).prefix


@pytest.fixture
def ana(api: ApiClient, make_user: Callable[..., Any]) -> Any:
    return make_user("ana", api.project)


@pytest.fixture
def sam(api: ApiClient, make_user: Callable[..., Any]) -> Any:
    return make_user("sam", api.project, role="supervisor")


def _impersonate_then_reply(api: ApiClient, ana: Any) -> None:
    """A bot writes a turn as "ana"; then the real ana claims and replies."""
    escalate(api)
    api.client.post(
        "/api/v1/sessions/conv-1/docs",
        {"docs": [IMPERSONATION]},
        content_type="application/json",
        headers={"X-Agent": "ana"},
    )
    client = logged_in(ana)
    client.post(session_url(api, action="claim"))
    client.post(session_url(api, action="reply"), {"text": "Hello, ana here.", "channel": "chat"})


def _turn_html(html: str, doc_id: str) -> str:
    start = html.index(f'data-doc-id="{doc_id}"')
    return html[start : html.index("</li>", start)]


def test_the_turn_stores_who_wrote_it(api: ApiClient, ana: Any, prefix: str) -> None:
    _impersonate_then_reply(api, ana)
    fake = Turn.objects.get(doc_id="fake-ana")
    assert fake.written_by_key is not None and fake.written_by_key_prefix == prefix
    assert fake.written_by_user is None and fake.written_by == f"API key {prefix}"
    reply = Turn.objects.get(doc_id__startswith="console-")
    assert reply.written_by_user == ana and reply.written_by_key is None
    assert reply.written_by == "user ana"


def test_the_console_thread_marks_the_bot_turn_and_not_the_reply(
    api: ApiClient, ana: Any, prefix: str
) -> None:
    _impersonate_then_reply(api, ana)
    html = logged_in(ana).get(session_url(api)).content.decode()
    assert f"via API key {prefix}" in _turn_html(html, "fake-ana")
    reply_id = Turn.objects.get(doc_id__startswith="console-").doc_id
    assert BADGE not in _turn_html(html, reply_id)


def test_console_search_hits_mark_the_bot_turn(api: ApiClient, ana: Any, prefix: str) -> None:
    _impersonate_then_reply(api, ana)
    headers = {"HX-Request": "true", "HX-Target": "search-results"}
    html = (
        logged_in(ana)
        .get(session_url(api), {"q": "approved personally"}, headers=headers)
        .content.decode()
    )
    first_hit = html[html.index('class="hit"') : html.index("</a>")]
    # The matched terms are highlighted: read the hit's text without its <mark>s.
    assert "approved by me personally" in re.sub(r"</?mark>", "", first_hit)
    assert f"via API key {prefix}" in first_hit


def test_the_supervisor_timeline_and_as_received_mark_it(
    api: ApiClient, ana: Any, sam: Any, prefix: str
) -> None:
    _impersonate_then_reply(api, ana)
    client = logged_in(sam)
    base = f"/supervise/p/{api.project.public_id}/s/conv-1/"
    fake_seq = Turn.objects.get(doc_id="fake-ana").seq
    reply_seq = Turn.objects.get(doc_id__startswith="console-").seq
    for url in (base, f"{base}received/1/"):
        html = client.get(url).content.decode()
        fake = html[html.index(f'id="turn-{fake_seq}"') :]
        assert f"via API key {prefix}" in fake[: fake.index("</li>")], url
        reply = html[html.index(f'id="turn-{reply_seq}"') :]
        assert BADGE not in reply[: reply.index("</li>")], url


def test_exports_say_who_wrote_each_turn(api: ApiClient, ana: Any, sam: Any, prefix: str) -> None:
    _impersonate_then_reply(api, ana)
    client = logged_in(sam)
    base = f"/supervise/p/{api.project.public_id}/s/conv-1/"
    lines = client.get(f"{base}export.jsonl").getvalue().decode().splitlines()
    rows = {r["doc_id"]: r for r in map(json.loads, lines) if r["kind"] == "turn"}
    csv_text = client.get(f"{base}export.csv").getvalue().decode()
    csv_rows = {r["doc_id"]: r for r in csv.DictReader(io.StringIO(csv_text)) if r["seq"]}
    reply_id = Turn.objects.get(doc_id__startswith="console-").doc_id
    for exported in (rows, csv_rows):
        assert exported["fake-ana"]["written_by"] == f"API key {prefix}"
        assert exported[reply_id]["written_by"] == "user ana"


def test_a_bot_overwriting_a_reply_takes_the_mark(api: ApiClient, ana: Any, prefix: str) -> None:
    _impersonate_then_reply(api, ana)
    reply = Turn.objects.get(doc_id__startswith="console-")
    doc = {"id": reply.doc_id, "text": "Edited by a bot.", "metadata": reply.metadata}
    assert api.post("/sessions/conv-1/docs", {"docs": [doc]}).json()["updated"] == 1
    reply.refresh_from_db()
    assert reply.written_by_key_prefix == prefix and reply.written_by_user is None


def test_the_migration_backfills_existing_turns_from_the_audit_log(
    api: ApiClient, ana: Any, prefix: str
) -> None:
    _impersonate_then_reply(api, ana)
    Turn.objects.update(written_by_key=None, written_by_key_prefix="", written_by_user=None)
    migration = importlib.import_module("sessions_app.migrations.0004_turn_written_by")
    migration.backfill_from_audit(apps, None)
    assert Turn.objects.get(doc_id="fake-ana").written_by_key_prefix == prefix
    assert Turn.objects.get(doc_id="turn-1").written_by_key_prefix == prefix
    assert Turn.objects.get(doc_id__startswith="console-").written_by_user == ana
