"""Context vectors: each turn read after the turns before it in its window, kept right
through edits and deletes, backfilled (sessions_app/context_windows.py)."""

import numpy as np
import pytest
from django.db import models

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.context_windows import (
    WINDOW_CHARS,
    ContextWindow,
    Said,
    context_windows,
    said_of,
    within_reach,
)
from sessions_app.models import Turn
from sessions_app.services.backfill import turns_embed_pending, turns_pending_count
from sessions_app.services.sessions import session_open
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


def said(turn):
    return said_of(turn[1], {"role": turn[0]})


def expected(*turns, previous=None):
    """The context vector of the last of `turns`, read in one window after `previous`,
    encoded as one run (as a call of these turns encodes it)."""
    return run_of(*turns, previous=previous)[-1]


def run_of(*turns, previous=None):
    """The context vectors of a call of these turns, after `previous`."""
    windows = context_windows(
        previous=None if previous is None else said(previous), turns=[said(t) for t in turns]
    )
    return embeddings.windows_embed(windows)


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def context_of(session, doc_id):
    return np.asarray(Turn.objects.get(session=session, doc_id=doc_id).context_embedding)


QUESTION = ("bot", "Can you confirm the last four digits of the card?")
ANSWER = ("customer", "It ends in 4417.")
THANKS = ("bot", "Thanks, I can see the two debits.")
CORRECTED = ("customer", "Sorry, it ends in 4471.")


def test_windows_hold_the_turns_before_up_to_the_budget_then_start_again():
    short = [Said("Customer", f"turn {n}") for n in range(100)]
    windows = context_windows(previous=None, turns=short)
    assert windows[0] == ContextWindow(previous=None, turns=(short[0],))
    assert windows[2].turns == tuple(short[:3])
    restart = next(n for n, w in enumerate(windows) if w.turns[0] != short[0])
    assert windows[restart] == ContextWindow(previous=short[restart - 1], turns=(short[restart],))
    assert sum(len(s.role) + 2 + len(s.text) for s in windows[restart - 1].turns) <= WINDOW_CHARS
    # A turn longer than the budget is a window of its own, after the turn before it.
    long = Said("Customer", "x" * (2 * WINDOW_CHARS))
    after = context_windows(previous=short[0], turns=[short[1], long, short[2]])
    assert after[1] == ContextWindow(previous=short[1], turns=(long,))
    assert after[2] == ContextWindow(previous=long, turns=(short[2],))
    # What an edit must read again: the next turn always, then as far as a window reaches.
    assert within_reach([long, short[1]]) == 1
    assert within_reach(short) == restart


def test_each_turn_is_read_after_the_turns_before_it(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    add(session, doc("t3", *THANKS))  # a later call: it starts after the thread's last turn
    first, second = run_of(QUESTION, ANSWER)
    assert context_of(session, "t1") == pytest.approx(first, abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(second, abs=1e-5)
    assert context_of(session, "t3") == pytest.approx(expected(THANKS, previous=ANSWER), abs=1e-5)
    assert turns_pending_count() == 0


def test_a_turn_does_not_read_the_turns_after_it(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER), doc("t3", *THANKS))
    # Not at all in full precision (tests/test_encoder_parity.py); the int8 graph shares
    # one activation scale per run, which the turns after it move a little.
    assert cosine(context_of(session, "t2"), expected(QUESTION, ANSWER)) > 0.99
    assert cosine(context_of(session, "t2"), expected(QUESTION, CORRECTED)) < 0.99


def test_an_edit_recomputes_every_turn_that_read_it(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER), doc("t3", *THANKS))
    first_before = context_of(session, "t1")
    add(session, doc("t2", *CORRECTED))
    assert context_of(session, "t1") == pytest.approx(first_before)
    # t3 read t2 in its window: both are read again, after the corrected text.
    second, third = run_of(CORRECTED, THANKS, previous=QUESTION)
    assert context_of(session, "t2") == pytest.approx(second, abs=1e-5)
    assert context_of(session, "t3") == pytest.approx(third, abs=1e-5)


def test_an_edit_leaves_turns_beyond_reach_alone(session):
    filler = ("bot", "A long explanation of the refund policy. " * 14)  # over the budget
    add(
        session,
        doc("t1", *QUESTION),
        doc("t2", *ANSWER),
        doc("t3", *filler),
        doc("t4", *THANKS),
        doc("t5", *filler),
    )
    fifth_before = context_of(session, "t5")
    add(session, doc("t2", *CORRECTED))
    assert context_of(session, "t3") == pytest.approx(
        expected(filler, previous=CORRECTED), abs=1e-5
    )
    assert context_of(session, "t5") == pytest.approx(fifth_before)


def test_a_role_change_alone_changes_the_context(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    add(session, doc("t2", "agent", ANSWER[1]))
    assert context_of(session, "t2") == pytest.approx(
        expected(("agent", ANSWER[1]), previous=QUESTION), abs=1e-5
    )


def test_a_delete_rereads_the_turns_after_it_from_the_turn_before(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER), doc("t3", *THANKS))
    turns_delete(session=session, doc_ids=["t2"], actor=bot(session.project))
    assert context_of(session, "t3") == pytest.approx(expected(THANKS, previous=QUESTION), abs=1e-5)


def test_a_private_note_is_in_no_context_and_has_none(session):
    add(session, doc("t1", *QUESTION))
    note = ("agent", "Customer sounded stressed; card fraud suspected.")
    turns_upsert(
        session=session, docs=[doc("n1", *note)], actor=bot(session.project), internal=True
    )
    add(session, doc("t2", *ANSWER))
    assert context_of(session, "n1") == pytest.approx(expected(note), abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(expected(ANSWER, previous=QUESTION), abs=1e-5)
    Turn.objects.filter(session=session).update(context_embedding=None)
    turns_embed_pending()
    assert context_of(session, "n1") == pytest.approx(expected(note), abs=1e-5)
    assert context_of(session, "t2") == pytest.approx(expected(ANSWER, previous=QUESTION), abs=1e-5)


def test_a_client_embedding_gets_no_context_vector_but_is_read_as_context(session):
    vector = [0.0] * 384
    vector[0] = 1.0
    add(
        session,
        doc("t1", *QUESTION, embedding=vector),
        doc("t2", *ANSWER),
        doc("t3", *THANKS, embedding=vector),
    )
    assert Turn.objects.get(session=session, doc_id="t1").context_embedding is None
    # Only t2's window is encoded: the client's turns are read, not embedded.
    assert context_of(session, "t2") == pytest.approx(expected(QUESTION, ANSWER), abs=1e-5)
    add(session, doc("t2", *CORRECTED))  # t3 follows an edited turn
    assert Turn.objects.get(session=session, doc_id="t3").context_embedding is None
    assert turns_pending_count() == 0


def test_turns_stored_before_context_vectors_are_backfilled(session):
    add(session, doc("t1", *QUESTION), doc("t2", *ANSWER))
    Turn.objects.filter(session=session).update(context_embedding=None)
    assert turns_pending_count() == 2
    assert turns_embed_pending() == 2
    # The backfill reads each turn after its predecessor alone.
    assert context_of(session, "t2") == pytest.approx(expected(ANSWER, previous=QUESTION), abs=1e-5)
    assert turns_pending_count() == 0


@pytest.fixture
def thread_reads(monkeypatch):
    """The seqs the thread is read around (services/turn_context.thread_around)."""
    from sessions_app.services import turn_context

    reads = []
    real = turn_context.thread_around

    def counted(**kwargs):
        reads.append(kwargs["seq"])
        return real(**kwargs)

    monkeypatch.setattr(turn_context, "thread_around", counted)
    return reads


def test_a_bulk_edit_reads_the_thread_a_few_times_not_twice_a_turn(session, thread_reads):
    before = [("customer", f"Message {n} about the refund.") for n in range(40)]
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(before)))
    thread_reads.clear()
    after = [("agent", text) for _, text in before]  # every role changes
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(after)))
    # Once per run before the session lock and once under it; a run reads on from its start.
    assert len(thread_reads) <= 4
    expected_run = run_of(*after)
    for n in (0, 17, 39):
        assert context_of(session, f"t{n}") == pytest.approx(expected_run[n], abs=1e-5)


def test_edits_a_turn_apart_are_read_after_the_edited_turn_before(session, thread_reads):
    turns = [("customer", f"Message {n} about the refund.") for n in range(6)]
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(turns)))
    edited = {1: ("agent", "Refund approved."), 2: ("customer", "Great, thanks.")}
    add(session, *(doc(f"t{n}", *turn) for n, turn in edited.items()))
    # t2 follows the edited t1 (read once, not again around t2): one run from t0.
    second = run_of(edited[1], edited[2], *turns[3:], previous=turns[0])
    for n in range(1, 6):
        assert context_of(session, f"t{n}") == pytest.approx(second[n - 1], abs=1e-5)


def test_a_bulk_delete_reads_the_thread_a_few_times_not_twice_a_turn(session, thread_reads):
    turns = [("customer", f"Message {n} about the refund.") for n in range(40)]
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(turns)))
    thread_reads.clear()
    doomed = [f"t{n}" for n in range(1, 40, 2)]
    assert turns_delete(session=session, doc_ids=doomed, actor=bot(session.project)) == 20
    assert len(thread_reads) <= 2
    # What is left is read again as one run, from the first turn.
    kept = turns[0::2]
    expected_run = run_of(*kept)
    for n, position in ((2, 1), (20, 10), (38, 19)):
        assert context_of(session, f"t{n}") == pytest.approx(expected_run[position], abs=1e-5)


def test_deletes_far_apart_are_read_again_apart(session):
    filler = ("bot", "A long explanation of the refund policy. " * 14)  # over the budget
    turns = [QUESTION, ANSWER, THANKS, filler, QUESTION, ANSWER, THANKS]
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(turns)))
    turns_delete(session=session, doc_ids=["t1", "t5"], actor=bot(session.project))
    assert context_of(session, "t2") == pytest.approx(expected(THANKS, previous=QUESTION), abs=1e-5)
    # t3 read t2 (within reach of the gap at t1), so it is read again, after t2.
    assert context_of(session, "t3") == pytest.approx(expected(filler, previous=THANKS), abs=1e-5)
    assert context_of(session, "t6") == pytest.approx(expected(THANKS, previous=QUESTION), abs=1e-5)


def test_a_session_reencoded_reads_its_turns_in_chunks_as_adds_would(session):
    from sessions_app.services.context_reencode import session_contexts_reencode

    note = ("agent", "Customer sounded stressed; card fraud suspected.")
    vector = [0.0] * 384
    vector[0] = 1.0
    turns = [QUESTION, ANSWER, THANKS, CORRECTED, QUESTION]
    add(session, *(doc(f"t{n}", *turn) for n, turn in enumerate(turns)))
    add(session, doc("c5", *ANSWER, embedding=vector))
    turns_upsert(
        session=session, docs=[doc("n1", *note)], actor=bot(session.project), internal=True
    )
    # Vectors of an earlier kind (here: the plain ones) stand in for what an upgrade left.
    Turn.objects.filter(session=session).exclude(doc_id="c5").update(
        context_embedding=models.F("embedding")
    )
    assert session_contexts_reencode(session=session, chunk=2) == 6  # not the client's turn
    # Chunks of two, each after the turn before it, as two-turn adds would have read them.
    expected_vectors = [
        *run_of(*turns[0:2]),
        *run_of(*turns[2:4], previous=turns[1]),
        *run_of(turns[4], previous=turns[3]),
    ]
    for n, vector in enumerate(expected_vectors):
        assert context_of(session, f"t{n}") == pytest.approx(vector, abs=1e-5)
    assert Turn.objects.get(session=session, doc_id="c5").context_embedding is None
    assert context_of(session, "n1") == pytest.approx(expected(note), abs=1e-5)
