"""Context vectors: computed with the turn, kept right through edits and deletes, backfilled."""

import numpy as np
import pytest

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.models import Turn
from sessions_app.services.backfill import turns_embed_pending, turns_pending_count
from sessions_app.services.sessions import session_open
from sessions_app.services.turn_context import context_text, said_of
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert


@pytest.fixture
def session(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=bot(project))
    return session


def bot(project):
    return Actor.for_key(project.api_keys.get(), agent="chat-bot")


def add(session, *docs):
    turns_upsert(session=session, docs=list(docs), actor=bot(session.project))


def doc(doc_id, role, text, **extra):
    return DocInput(id=doc_id, text=text, metadata={"role": role}, **extra)


def expected(text, role, previous=None):
    before = said_of(previous[1], {"role": previous[0]}) if previous else None
    wanted = context_text(turn=said_of(text, {"role": role}), previous=before)
    return embeddings.texts_embed([wanted], context=True)[0]


def context_of(session, doc_id):
    return np.asarray(Turn.objects.get(session=session, doc_id=doc_id).context_embedding)


QUESTION = ("bot", "Can you confirm the last four digits of the card?")
ANSWER = ("customer", "It ends in 4417.")
THANKS = ("bot", "Thanks, I can see the two debits.")


def test_each_turn_is_stored_with_the_context_of_the_turn_before_it(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    add(session, doc("t3", *THANKS))  # a later call: its predecessor is read from the thread
    assert context_of(session, "t1") == pytest.approx(expected(QUESTION[1], "bot"), abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "customer", QUESTION), abs=1e-5
    )
    assert context_of(session, "t3") == pytest.approx(expected(THANKS[1], "bot", ANSWER), abs=1e-5)
    assert turns_pending_count() == 0


def test_an_edit_recomputes_the_edited_turn_and_the_one_after_it(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER), doc("t3", *THANKS))
    first_before = context_of(session, "t1")
    corrected = ("customer", "Sorry, it ends in 4471.")
    add(session, doc("t2", *corrected))
    assert context_of(session, "t1") == pytest.approx(first_before)
    assert context_of(session, "t2") == pytest.approx(
        expected(corrected[1], "customer", QUESTION), abs=1e-5
    )
    assert context_of(session, "t3") == pytest.approx(
        expected(THANKS[1], "bot", corrected), abs=1e-5
    )


def test_a_role_change_alone_changes_the_context(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    add(session, doc("t2", "agent", ANSWER[1]))
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "agent", QUESTION), abs=1e-5
    )


def test_a_delete_gives_the_following_turn_its_new_predecessor(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER), doc("t3", *THANKS))
    turns_delete(session=session, doc_ids=["t2"], actor=bot(session.project))
    assert context_of(session, "t3") == pytest.approx(
        expected(THANKS[1], "bot", QUESTION), abs=1e-5
    )


def test_a_private_note_is_in_no_context_and_has_none(session):
    add(session, doc("t1", *QUESTION))
    note = ("agent", "Customer sounded stressed; card fraud suspected.")
    turns_upsert(
        session=session, docs=[doc("n1", *note)], actor=bot(session.project), internal=True
    )
    add(session, doc("t2", *ANSWER))
    assert context_of(session, "n1") == pytest.approx(expected(note[1], "agent"), abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "customer", QUESTION), abs=1e-5
    )
    Turn.objects.filter(session=session).update(context_embedding=None)
    turns_embed_pending()
    assert context_of(session, "n1") == pytest.approx(expected(note[1], "agent"), abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "customer", QUESTION), abs=1e-5
    )


def test_a_client_embedding_gets_no_context_vector_and_is_not_pending(session):
    vector = [0.0] * 384
    vector[0] = 1.0
    add(
        session,
        doc("t1", *QUESTION, embedding=vector),
        doc("t2", *ANSWER),
        doc("t3", *THANKS, embedding=vector),
    )
    assert Turn.objects.get(session=session, doc_id="t1").context_embedding is None
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "customer", QUESTION), abs=1e-5
    )
    add(session, doc("t2", "customer", "It ends in 4471."))  # t3 follows an edited turn
    assert Turn.objects.get(session=session, doc_id="t3").context_embedding is None
    assert turns_pending_count() == 0


def test_turns_stored_before_context_vectors_are_backfilled(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    Turn.objects.filter(session=session).update(context_embedding=None)
    assert turns_pending_count() == 2
    assert turns_embed_pending() == 2
    assert context_of(session, "t2") == pytest.approx(
        expected(ANSWER[1], "customer", QUESTION), abs=1e-5
    )
    assert turns_pending_count() == 0
