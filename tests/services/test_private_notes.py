"""Private notes: turns the humans read and bots never receive unless they ask."""

from sessions_app.actors import Actor
from sessions_app.models import AuditEvent, Event, SessionStatus, Turn
from sessions_app.selectors import turns_page
from sessions_app.services.console import console_note
from sessions_app.services.handoffs import session_claim, session_push, session_resolve
from sessions_app.services.search import turns_search
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert


def bot(project):
    return Actor.for_key(project.api_keys.get(), agent="chat-bot")


def held_session(project, user):
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    turns_upsert(
        session=session,
        docs=[DocInput(id="t1", text="My parcel never arrived", metadata={"role": "customer"})],
        actor=bot(project),
    )
    session_push(session=session, actor=bot(project), to_kind="humans", reason="lost parcel")
    session_claim(session=session, user=user)
    return session


def test_a_note_is_a_turn_marked_internal_that_counts_in_no_doc_count(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)

    doc_id = console_note(session=session, user=ana, text="Courier says depot 7 lost it")

    note = Turn.objects.get(doc_id=doc_id)
    assert note.internal is True
    assert note.metadata["role"] == "note" and note.metadata["author"] == "ana"
    assert note.written_by_user == ana
    session.refresh_from_db()
    assert session.doc_count == 1
    assert session.last_seq == note.seq == 2
    assert AuditEvent.objects.filter(session=session, kind="note.added").count() == 1


def test_a_note_writes_nothing_to_the_event_log_bots_read(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    before = Event.objects.filter(project=project).count()

    console_note(session=session, user=ana, text="Courier says depot 7 lost it")

    assert Event.objects.filter(project=project).count() == before
    assert not Event.objects.filter(data__text__contains="depot 7").exists()


def test_reads_and_searches_leave_notes_out_unless_asked(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    console_note(session=session, user=ana, text="Courier says depot 7 lost the parcel")

    assert [t.doc_id for t in turns_page(session=session)] == ["t1"]
    assert len(turns_page(session=session, include_internal=True)) == 2
    for alpha in (0.0, 0.5, 1.0):
        hidden = turns_search(session_ids=[session.pk], query="depot courier", alpha=alpha)
        assert all(not hit.internal for hit in hidden.docs)
        assert "depot" not in " ".join(hit.text for hit in hidden.docs)
        shown = turns_search(
            session_ids=[session.pk], query="depot courier", alpha=alpha, include_internal=True
        )
        assert any(hit.internal and "depot" in hit.text for hit in shown.docs)


def test_a_note_never_reopens_a_resolved_session(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    session_resolve(session=session, user=ana, note="refunded")

    console_note(session=session, user=ana, text="Customer was happy with the refund")

    session.refresh_from_db()
    assert session.status == SessionStatus.RESOLVED


def test_a_bot_can_neither_overwrite_nor_delete_a_note(make_project, make_user):
    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    doc_id = console_note(session=session, user=ana, text="VIP customer")

    try:
        turns_upsert(session=session, docs=[DocInput(id=doc_id, text="x")], actor=bot(project))
    except Exception as exc:
        assert "in use by another turn" in str(exc)
    else:
        raise AssertionError("a bot overwrote a private note")
    assert turns_delete(session=session, doc_ids=[doc_id], actor=bot(project)) == 0
    assert Turn.objects.get(doc_id=doc_id).text == "VIP customer"


def test_the_brief_bots_read_quotes_no_note(make_project, make_user):
    from sessions_app.services.brief import brief_build

    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    console_note(
        session=session,
        user=ana,
        text="I will refund order #88213 to card 4242 by Friday, call +44 20 7946 0958",
    )

    brief = brief_build(session=session)

    assert "88213" not in repr(brief) and "4242" not in repr(brief)
    assert "note-" not in repr(brief)


def test_a_note_is_no_turns_context(make_project, make_user):
    """Context vectors (services/turn_context.py) skip notes: bots' ranking never reflects one."""
    from sessions_app.services.turn_context import thread_around

    project, _ = make_project()
    ana = make_user("ana", project)
    session = held_session(project, ana)
    console_note(session=session, user=ana, text="VIP, refund without asking")
    turns_upsert(
        session=session,
        docs=[DocInput(id="t3", text="Any news?", metadata={"role": "customer"})],
        actor=bot(project),
    )

    previous, _ = thread_around(session=session, seq=3)

    assert previous is not None and previous.doc_id == "t1"
