"""Pages that cost what they show: paginated timeline, streamed exports, bounded search."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connections
from django.http import StreamingHttpResponse
from django.test import AsyncClient, Client

from sessions_app import streaming
from sessions_app.actors import Actor
from sessions_app.models import AuditEvent, Session, Turn
from sessions_app.services import console as console_service
from sessions_app.services import timeline as timeline_service
from sessions_app.services.timeline import timeline_build, timeline_page
from sessions_app.services.turns import DocInput, turns_upsert
from tests.supervise_history import History, history_build


@pytest.fixture
def history(db: None) -> History:
    return history_build()


@pytest.fixture
def sam(history: History) -> Client:
    client = Client()
    client.force_login(history.users["sam"])
    return client


def _longer(history: History, calls: int) -> None:
    """conv-1 gains `calls` adds of three turns each, plus one turn no event names."""
    bot = Actor.system("load-bot")
    for call in range(calls):
        docs = [
            DocInput(id=f"x{call}-{n}", text=f"extra turn {call} {n}", metadata={"channel": "chat"})
            for n in range(3)
        ]
        turns_upsert(session=history.conv1, docs=docs, actor=bot)
    # An orphan: its turns.added event is gone (events are pruned, turns kept).
    orphan = AuditEvent.objects.filter(session=history.conv1, kind="turns.added").latest("id")
    orphan.delete()


def _key(entry: timeline_service.TimelineEntry) -> tuple[str, str, int | None]:
    return (entry.kind, entry.doc_id, entry.audit_id)


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_timeline_pages_join_into_the_whole_timeline(history: History, limit: int) -> None:
    _longer(history, 6)
    whole = [_key(e) for e in timeline_build(session=history.conv1)]
    paged, after, pages = [], None, 0
    while True:
        page = timeline_page(session=history.conv1, after=after, limit=limit)
        paged += [_key(e) for e in page.entries]
        pages += 1
        assert len([e for e in page.entries if not e.is_turn]) <= limit
        if page.next_after is None:
            break
        after = page.next_after
    assert paged == whole
    assert pages > 1
    # Every turn once, the orphaned ones included.
    turns = [doc_id for kind, doc_id, _ in paged if kind == "turn"]
    assert sorted(turns) == sorted(
        Turn.objects.filter(session=history.conv1).values_list("doc_id", flat=True)
    )


def test_timeline_page_links_to_the_next_and_rejects_a_bad_cursor(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline_service, "PAGE_EVENTS", 4)
    _longer(history, 3)
    pid = history.project.public_id
    url = f"/supervise/p/{pid}/s/conv-1/"
    first = sam.get(url)
    assert first.status_code == 200
    after = first.context["next_after"]
    assert after is not None and f'href="?after={after}"' in first.content.decode()
    second = sam.get(url, {"after": after})
    assert second.status_code == 200
    seen = {e.anchor for e in first.context["entries"]}
    assert not seen & {e.anchor for e in second.context["entries"]}
    assert sam.get(url, {"after": "x1"}).status_code == 404
    assert sam.get(url, {"after": "²"}).status_code == 404  # a digit to str.isdigit, not to int
    assert sam.get(url, {"seq": "١٢"}).status_code == 404
    # A cursor of another session names nothing here.
    other = AuditEvent.objects.filter(session=history.conv2).first()
    assert other is not None
    assert sam.get(url, {"after": other.pk}).status_code == 404


def test_exports_hold_every_entry_across_pages(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _longer(history, 5)
    whole = [_key(e) for e in timeline_build(session=history.conv1)]
    monkeypatch.setattr(timeline_service, "PAGE_EVENTS", 2)
    url = f"/supervise/p/{history.project.public_id}/s/conv-1/export"
    response = sam.get(url + ".jsonl")
    assert response.streaming
    rows = [json.loads(line) for line in response.getvalue().decode().splitlines()]
    assert [(r["kind"], r["doc_id"], r["audit_id"]) for r in rows] == whole
    csv_lines = sam.get(url + ".csv").getvalue().decode().splitlines()
    assert len(csv_lines) >= len(whole) + 1


@pytest.mark.django_db(transaction=True)
async def test_exports_stream_under_asgi_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under ASGI the body is an async iterator: Django would buffer a sync one whole."""
    from asgiref.sync import sync_to_async

    history = await sync_to_async(history_build)()
    await sync_to_async(_longer)(history, 4)
    monkeypatch.setattr(timeline_service, "PAGE_EVENTS", 2)
    monkeypatch.setattr(streaming, "BATCH", 3)
    pages_read: list[int] = []
    real_page = timeline_service.timeline_page

    def counting_page(**kwargs: object) -> timeline_service.TimelinePage:
        page = real_page(**kwargs)  # type: ignore[arg-type]
        pages_read.append(len(page.entries))
        return page

    monkeypatch.setattr(timeline_service, "timeline_page", counting_page)
    client = AsyncClient()
    await sync_to_async(client.force_login)(history.users["sam"])
    url = f"/supervise/p/{history.project.public_id}/s/conv-1/export.jsonl"
    response = await client.get(url)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse) and response.is_async
    chunks = aiter(response.streaming_content)  # type: ignore[arg-type]
    first = await chunks.__anext__()
    assert first
    read_before_rest = len(pages_read)
    rest = [chunk async for chunk in chunks]
    assert read_before_rest < len(pages_read), "the first chunk came before every page was read"
    lines = (first + b"".join(rest)).decode().splitlines()
    assert len(lines) == sum(pages_read)
    # The rows were read in the thread that owns the database connection; close it there.
    await sync_to_async(connections.close_all)()


def test_channel_lists_are_kept_on_write(history: History, sam: Client) -> None:
    history.project.refresh_from_db()
    assert history.project.channels == ["chat", "email", "sms", "voice"]
    history.conv2.refresh_from_db()
    assert history.conv2.channels == ["sms"]
    bot = Actor.system("fax-bot")
    turns_upsert(
        session=history.conv2,
        docs=[DocInput(id="fx", text="sent by fax", metadata={"channel": "fax"})],
        actor=bot,
    )
    history.project.refresh_from_db()
    history.conv2.refresh_from_db()
    assert history.project.channels == ["chat", "email", "fax", "sms", "voice"]
    assert history.conv2.channels == ["fax", "sms"]
    pid = history.project.public_id
    response = sam.get(f"/supervise/p/{pid}/", {"channel": "fax"})
    assert response.context["channels"] == history.project.channels
    assert [s.name for s in response.context["page"]] == ["conv-2"]
    # Another project's list is its own.
    history.other.refresh_from_db()
    assert "fax" not in history.other.channels


def test_supervisor_search_reads_the_newest_sessions_within_a_bound(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_app.supervise import selectors

    pid = history.project.public_id
    whole = sam.get(f"/supervise/p/{pid}/", {"q": "refund"}).context["searched"]
    assert not whole.bounded and whole.sessions_searched == 2
    history.conv2.refresh_from_db()
    monkeypatch.setattr(selectors, "SEARCH_MAX_TURNS", history.conv2.doc_count)
    # conv-2 is the more recently active: conv-1 no longer fits the bound.
    Session.objects.filter(pk=history.conv2.pk).update(updated_at=history.now)
    Session.objects.filter(pk=history.conv1.pk).update(updated_at=history.now - timedelta(days=1))
    response = sam.get(f"/supervise/p/{pid}/", {"q": "refund"})
    searched = response.context["searched"]
    assert searched.bounded and searched.sessions_searched == 1
    assert {h.session_name for h in searched.hits} <= {"conv-2"}
    assert "most recently active sessions" in response.content.decode()


def _item_keys(items: list[console_service.ThreadItem]) -> list[tuple[int, int, int]]:
    return [item.key for item in items]


@pytest.mark.parametrize("limit", [1, 2, 4, 50])
def test_console_thread_pages_join_into_the_whole_thread(history: History, limit: int) -> None:
    _longer(history, 2)
    whole = console_service.console_thread(session=history.conv1)
    assert whole is not None
    latest = console_service.console_thread_latest(session=history.conv1, limit=limit)
    # The live cursor continues from the same point as the whole thread's.
    assert (latest.last_seq, latest.version) == (whole.last_seq, whole.version)
    pages = [latest.items]
    before = latest.earlier_before
    while before is not None:
        page = console_service.console_thread_latest(
            session=history.conv1, before_seq=before, limit=limit
        )
        assert len([i for i in page.items if i.turn]) <= limit
        pages.insert(0, page.items)
        before = page.earlier_before
    assert [key for items in pages for key in _item_keys(items)] == _item_keys(whole.items)


def test_console_page_opens_on_the_newest_turns_and_loads_earlier(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_service, "THREAD_PAGE", 3)
    _longer(history, 2)
    ana = Client()
    ana.force_login(history.users["sam"])
    url = f"/console/p/{history.project.public_id}/s/conv-1/"
    body = ana.get(url).content.decode()
    last_seq = history.conv1.turns.order_by("-seq").values_list("seq", flat=True)[0]
    assert f'id="turn-{last_seq}"' in body and 'id="turn-1"' not in body
    assert f'hx-get="?before={last_seq - 2}"' in body
    viewed = AuditEvent.objects.filter(kind="session.viewed").count()
    earlier = ana.get(url, {"before": last_seq - 2}, HTTP_HX_REQUEST="true")
    assert earlier.status_code == 200
    text = earlier.content.decode()
    assert f'id="turn-{last_seq - 3}"' in text and f'id="turn-{last_seq - 2}"' not in text
    assert "Load earlier turns" in text
    assert AuditEvent.objects.filter(kind="session.viewed").count() == viewed


def test_a_search_hit_opens_the_timeline_page_holding_its_turn(
    history: History, sam: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline_service, "PAGE_EVENTS", 2)
    _longer(history, 5)
    url = f"/supervise/p/{history.project.public_id}/s/conv-1/"
    for turn in Turn.objects.filter(session=history.conv1):
        response = sam.get(url, {"seq": turn.seq})
        assert response.status_code == 200
        assert f'id="turn-{turn.seq}"' in response.content.decode(), turn.doc_id
    assert sam.get(url, {"seq": 999}).status_code == 200  # no such turn: the first page
