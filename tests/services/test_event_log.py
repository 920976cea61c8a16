"""The event log: every change writes its events in the change's own transaction."""

import threading

import pytest
from django.db import connection, transaction

from sessions_app.actors import Actor
from sessions_app.models import Event
from sessions_app.selectors import events_after, session_get
from sessions_app.services.event_log import event_payload, events_prune
from sessions_app.services.handoffs import session_claim, session_hand_back, session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert


def bot(project):
    return Actor.for_key(project.api_keys.get(), agent="sms-bot")


def types(project):
    return list(
        Event.objects.filter(project=project).order_by("cursor").values_list("type", flat=True)
    )


def test_every_change_to_a_session_is_logged_in_order(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    turns_upsert(
        session=session,
        docs=[
            DocInput(id="t1", text="My card was charged twice", metadata={"role": "customer"}),
            DocInput(id="t2", text="Let me get a human", metadata={"role": "bot"}),
        ],
        actor=bot(project),
    )
    session_push(session=session, actor=bot(project), to_kind="humans", reason="refund")
    session_claim(session=session, user=ana)
    turns_upsert(
        session=session,
        docs=[DocInput(id="t1", text="My card was charged twice!", metadata={"role": "customer"})],
        actor=bot(project),
    )
    session_hand_back(session=session, user=ana, bot="sms-bot", note="fee reversed")
    turns_delete(session=session, doc_ids=["t2"], actor=bot(project))

    assert types(project) == [
        "session.created",
        "turn.added",
        "turn.added",
        "session.escalated",
        "session.claimed",
        "turn.updated",
        "session.handed_back",
        "turn.deleted",
    ]
    cursors = list(
        Event.objects.filter(project=project).order_by("cursor").values_list("cursor", flat=True)
    )
    assert cursors == list(range(1, 9))


def test_the_event_shape_carries_session_actor_and_data(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    session_push(session=session, actor=bot(project), to_kind="humans", reason="refund")
    session_claim(session=session, user=ana)
    session_hand_back(session=session, user=ana, bot="sms-bot", note="I've reversed the fee")

    event = Event.objects.get(type="session.handed_back")
    payload = event_payload(event)
    assert payload["id"].startswith("evt_")
    assert payload["cursor"] == event.cursor
    assert payload["session"] == {
        "name": "conv-1",
        "status": "bot",
        "holder": "sms-bot",
        "version": 2,
    }
    assert payload["actor"] == {"kind": "user", "name": "ana"}
    assert payload["data"]["note"] == "I've reversed the fee"
    assert payload["data"]["to"] == {"kind": "bot", "target": "sms-bot"}
    claimed = event_payload(Event.objects.get(type="session.claimed"))
    assert claimed["data"]["holder"] == "ana"
    assert claimed["session"]["status"] == "held"


def test_turn_events_carry_the_turn(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    turns_upsert(
        session=session,
        docs=[
            DocInput(
                id="t1",
                text="Hello",
                metadata={"role": "customer", "author": "Dana", "channel": "sms"},
            )
        ],
        actor=bot(project),
    )
    data = Event.objects.get(type="turn.added").data
    assert data == {
        "id": "t1",
        "seq": 1,
        "role": "customer",
        "author": "Dana",
        "channel": "sms",
        "text": "Hello",
        "metadata": {"role": "customer", "author": "Dana", "channel": "sms"},
    }


def test_a_rejected_change_writes_no_event(make_project, make_user):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    before = Event.objects.count()
    with pytest.raises(Exception):  # noqa: B017 - whichever domain error, nothing is written
        session_push(session=session, actor=bot(project), to_kind="team", to_target="nobody")
    with pytest.raises(Exception):  # noqa: B017
        turns_upsert(session=session, docs=[DocInput(id="", text="x")], actor=bot(project))
    assert Event.objects.count() == before


def test_a_rolled_back_transaction_leaves_no_event_and_no_cursor_gap(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        turns_upsert(session=session, docs=[DocInput(id="t1", text="x")], actor=bot(project))
        raise Abort
    session = session_get(project=project, name="conv-1")
    turns_upsert(session=session, docs=[DocInput(id="t2", text="y")], actor=bot(project))
    assert list(Event.objects.order_by("cursor").values_list("cursor", "type")) == [
        (1, "session.created"),
        (2, "turn.added"),
    ]


def test_cursors_are_per_project(make_project):
    acme, _ = make_project("Acme")
    globex, _ = make_project("Globex")
    session_open(project=acme, name="a", actor=bot(acme))
    session_open(project=globex, name="g", actor=bot(globex))
    assert [e.cursor for e in events_after(project=acme)] == [1]
    assert [e.session_name for e in events_after(project=globex)] == ["g"]


def test_events_after_filters_by_type_and_session(make_project):
    project, _ = make_project()
    for name in ("a", "b"):
        session, _ = session_open(project=project, name=name, actor=bot(project))
        turns_upsert(session=session, docs=[DocInput(id="t", text="x")], actor=bot(project))
    assert [e.session_name for e in events_after(project=project, types=["turn.added"])] == [
        "a",
        "b",
    ]
    assert [e.type for e in events_after(project=project, session_name="b")] == [
        "session.created",
        "turn.added",
    ]
    assert [e.cursor for e in events_after(project=project, after=2, limit=1)] == [3]


def test_a_customer_turn_reopens_a_resolved_session(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    session_push(session=session, actor=bot(project), to_kind="humans")
    session_claim(session=session, user=ana)
    from sessions_app.services.handoffs import session_resolve

    session_resolve(session=session, user=ana, note="done")
    # A bot's own turn does not reopen it; the customer's does.
    turns_upsert(
        session=session,
        docs=[DocInput(id="b", text="Survey?", metadata={"role": "bot"})],
        actor=bot(project),
    )
    assert session_get(project=project, name="conv-1").status == "resolved"
    turns_upsert(
        session=session,
        docs=[DocInput(id="c", text="It happened again", metadata={"role": "customer"})],
        actor=bot(project),
    )
    session = session_get(project=project, name="conv-1")
    assert session.status == "waiting"
    reopened = Event.objects.get(type="session.reopened")
    assert reopened.session_state["status"] == "waiting"
    assert reopened.data["to"] == {"kind": "humans", "target": ""}
    assert types(project)[-2:] == ["turn.added", "session.reopened"]


def test_prune_removes_events_past_retention(make_project):
    from datetime import timedelta

    from django.utils import timezone

    project, _ = make_project()
    session_open(project=project, name="old", actor=bot(project))
    session_open(project=project, name="new", actor=bot(project))
    Event.objects.filter(session_name="old").update(created_at=timezone.now() - timedelta(days=15))
    assert events_prune() == 1
    assert [e.session_name for e in Event.objects.all()] == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_cursors_in_commit_order(make_project):
    """A reader that has seen cursor N must never later find an event below N."""
    project, _ = make_project()
    session_open(project=project, name="a", actor=bot(project))
    session_open(project=project, name="b", actor=bot(project))
    errors = []

    def write(name):
        try:
            session = session_get(project=project, name=name)
            for i in range(15):
                turns_upsert(
                    session=session,
                    docs=[DocInput(id=f"{name}{i}", text="x", embedding=[0.1] * 384)],
                    actor=bot(project),
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    seen = 0
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for event in events_after(project=project, after=seen, limit=1000):
            assert event.cursor == seen + 1, "an event appeared below a cursor already read"
            seen = event.cursor
    for t in threads:
        t.join()
    assert not errors
    assert Event.objects.filter(project=project).count() == 32
    cursors = sorted(Event.objects.filter(project=project).values_list("cursor", flat=True))
    assert cursors == list(range(1, 33))
