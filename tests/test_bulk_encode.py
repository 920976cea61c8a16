"""Text being stored is encoded on threads of lower CPU priority than a query's encode, and
without holding a database connection, so that under load queries do not wait behind the
adds (README, "Embedding model")."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pytest
from django.db import connection

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.context_windows import ContextWindow, Said, context_windows
from sessions_app.models import Project, Turn
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert


def _thread_and_nice() -> tuple[str, int]:
    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return threading.current_thread().name, nice


@pytest.fixture
def encoded_on(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The (thread name, nice value) of each encode run from now on."""
    seen: list[tuple[str, int]] = []
    encode = embeddings.stored_texts_embed

    def watched(texts: list[str], **options: Any) -> np.ndarray:
        seen.append(_thread_and_nice())
        return encode(texts, **options)

    monkeypatch.setattr(embeddings, "stored_texts_embed", watched)
    return seen


def test_stored_text_is_encoded_at_a_lower_priority_with_the_same_vectors(
    settings: Any, encoded_on: list[tuple[str, int]]
) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 10
    _, own = _thread_and_nice()
    texts = ["It ends in 4417.", "Refund of $64.99 approved; it lands in 3-5 days."]
    vectors = embeddings.passages_embed(texts)
    [(name, nice)] = encoded_on
    assert name.startswith("moss-bulk-encode")
    assert nice == min(own + 10, 19)
    assert _thread_and_nice()[1] == own  # the caller's priority is its own
    cosines = (vectors * embeddings.stored_texts_embed(texts)).sum(axis=1)
    assert cosines.min() > 0.99999


def test_a_large_call_is_shared_among_the_pool_and_keeps_its_order(settings: Any) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 10
    texts = [f"Order HD-{n:05d}: " + "the parcel is late. " * (n % 7) for n in range(40)]
    vectors = embeddings.passages_embed(texts)
    assert vectors.shape == (40, settings.EMBEDDING_DIMENSIONS)
    # Each row is its own text's vector (padded in other batches: equal up to rounding).
    cosines = (vectors * embeddings.stored_texts_embed(texts)).sum(axis=1)
    assert cosines.min() > 0.99999


@pytest.fixture
def two_cores(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pools of two threads, as on this machine's two cores, whatever the machine has."""
    settings.MOSS_BULK_ENCODE_NICE = 10
    monkeypatch.setattr(embeddings, "cores", lambda: 2)
    monkeypatch.setattr(embeddings, "_pools", {})


@pytest.mark.usefixtures("two_cores")
def test_a_calls_texts_and_context_windows_are_encoded_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each encode waits here for the other: one after the other, the first would time out.
    both_running = threading.Barrier(2, timeout=30)
    encode, encode_windows = embeddings.stored_texts_embed, embeddings.windows_embed

    def meeting(encoder: Any) -> Any:
        def met(items: list[Any], **options: Any) -> np.ndarray:
            both_running.wait()
            return encoder(items, **options)

        return met

    monkeypatch.setattr(embeddings, "stored_texts_embed", meeting(encode))
    monkeypatch.setattr(embeddings, "windows_embed", meeting(encode_windows))
    texts = ["It ends in 4417.", "Yes, go ahead."]
    windows = context_windows(
        previous=Said("Bot", "The card's last four digits?"),
        turns=[Said("Customer", text) for text in texts],
    )
    vectors, context_vectors = embeddings.passages_embed_with_contexts(texts, windows)
    assert (vectors * encode(texts)).sum(axis=1).min() > 0.99999
    assert (context_vectors * encode_windows(windows)).sum(axis=1).min() > 0.99999


@pytest.mark.usefixtures("two_cores")
def test_a_large_calls_windows_are_shared_by_run_among_the_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parts: list[int] = []
    encode_windows = embeddings.windows_embed

    def counted(windows: list[Any]) -> np.ndarray:
        parts.append(len(windows))
        return encode_windows(windows)

    monkeypatch.setattr(embeddings, "windows_embed", counted)
    turns = [Said("Customer", f"Message number {n} about the refund.") for n in range(60)]
    windows = context_windows(previous=None, turns=turns)
    vectors = embeddings.passages_embed_with_contexts([], windows)[1]
    assert len(parts) == 2 and sum(parts) == len(windows)
    # Each run is encoded whole by one thread: the same vectors as in one call.
    assert (vectors * encode_windows(windows)).sum(axis=1).min() > 0.99999


def test_a_chat_sized_call_is_not_queued_behind_large_ones(
    settings: Any, encoded_on: list[tuple[str, int]]
) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 10
    _, own = _thread_and_nice()
    embeddings.passages_embed([f"turn {n}" for n in range(embeddings.LARGE_CALL_TEXTS)])
    assert {name.rsplit("_", 1)[0] for name, _ in encoded_on} == {"moss-bulk-encode-large"}
    assert {nice for _, nice in encoded_on} == {
        min(own + 10 + embeddings.LARGE_CALL_EXTRA_NICE, 19)
    }
    # Every thread of the large calls' pool busy, as during an import:
    busy, release = threading.Barrier(embeddings.cores() + 1), threading.Event()
    large_pool = embeddings._pool_get(large=True)
    for _ in range(embeddings.cores()):
        large_pool.submit(lambda: (busy.wait(), release.wait(30)))
    busy.wait(30)
    try:
        texts = ["Yes, go ahead.", "It ends in 4417."]
        vectors = embeddings.passages_embed(texts)  # done without the large pool
        assert (vectors * embeddings.stored_texts_embed(texts)).sum(axis=1).min() > 0.99999
    finally:
        release.set()


def test_with_no_added_nice_stored_text_is_encoded_by_the_caller(
    settings: Any, encoded_on: list[tuple[str, int]]
) -> None:
    settings.MOSS_BULK_ENCODE_NICE = 0
    window = ContextWindow(previous=None, turns=(Said("Customer", "Yes, go ahead."),))
    embeddings.passages_embed_with_contexts(["Yes, go ahead."], [window])
    assert {name for name, _ in encoded_on} == {threading.current_thread().name}


@pytest.mark.django_db(transaction=True)
def test_a_call_holds_no_database_connection_while_its_turns_are_encoded(
    make_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = make_project()
    assert isinstance(project, Project)
    actor = Actor.for_key(project.api_keys.get(), agent="chat-bot")
    session, _ = session_open(project=project, name="conv-1", actor=actor)
    held: list[bool] = []
    encode = embeddings.passages_embed_with_contexts

    def watched(texts: list[str], windows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        held.append(connection.connection is not None)
        return encode(texts, windows)

    monkeypatch.setattr(embeddings, "passages_embed_with_contexts", watched)
    docs = [DocInput(id="t1", text="Where is my refund?", metadata={"role": "customer"})]
    turns_upsert(session=session, docs=docs, actor=actor)
    assert held == [False]  # its text and its context window, at once
    turn = Turn.objects.get(session=session, doc_id="t1")
    assert turn.embedding is not None and turn.context_embedding is not None
