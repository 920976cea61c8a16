"""sessions_app/write_slots.py: calls that store turns take turns, and wait holding nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.db import connection, transaction

from sessions_app import embeddings, write_slots
from sessions_app.actors import Actor
from sessions_app.embeddings import LARGE_CALL_TEXTS
from sessions_app.models import Project, Turn
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert


@pytest.fixture
def one_slot(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.MOSS_WRITE_SLOTS = 1
    monkeypatch.setattr(write_slots, "_slots", {})


@pytest.fixture
def encode_held(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The first encode signals `entered` and waits for `release`."""
    entered, release = threading.Event(), threading.Event()
    encode = embeddings.passages_embed_with_contexts

    def held(texts: list[str], windows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        if not entered.is_set():
            entered.set()
            assert release.wait(30)
        return encode(texts, windows)

    monkeypatch.setattr(embeddings, "passages_embed_with_contexts", held)
    return entered, release


def _add(project: Project, name: str, doc_id: str, done: list[str]) -> None:
    try:
        actor = Actor.for_key(project.api_keys.get(), agent="chat-bot")
        session, _ = session_open(project=project, name=name, actor=actor)
        turns_upsert(
            session=session, docs=[DocInput(id=doc_id, text=f"turn {doc_id}")], actor=actor
        )
        done.append(doc_id)
    finally:
        connection.close()


@dataclass
class SlotHeld:
    """A first call ("a", in conv-1) holding the only slot, stopped in its encode."""

    project: Project
    done: list[str]
    release: threading.Event
    first: threading.Thread

    def finish(self) -> None:
        self.release.set()
        self.first.join(30)


@pytest.fixture
def slot_held(
    one_slot: None, encode_held: tuple[threading.Event, threading.Event], make_project: Any
) -> Iterator[SlotHeld]:
    entered, release = encode_held
    project, _ = make_project()
    done: list[str] = []
    first = threading.Thread(target=_add, args=(project, "conv-1", "a", done))
    first.start()
    assert entered.wait(30)
    held = SlotHeld(project=project, done=done, release=release, first=first)
    yield held
    held.finish()


@pytest.mark.django_db(transaction=True)
def test_a_second_call_waits_for_the_slot_holding_no_connection(slot_held: SlotHeld) -> None:
    waiting: list[bool] = []
    slots = write_slots._slots_get()
    acquire = slots.acquire

    def watched_acquire(blocking: bool = True, timeout: float | None = None) -> bool:
        if blocking:
            waiting.append(connection.connection is not None)
        return acquire(blocking, timeout)

    slots.acquire = watched_acquire  # type: ignore[method-assign]
    second = threading.Thread(target=_add, args=(slot_held.project, "conv-2", "b", slot_held.done))
    second.start()
    second.join(1.0)
    assert second.is_alive() and slot_held.done == []  # still waiting for the slot
    assert waiting == [False]  # and it gave its connection back first
    slot_held.finish()
    second.join(30)
    assert slot_held.done == ["a", "b"]
    assert Turn.objects.filter(session__project=slot_held.project).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_call_inside_a_transaction_does_not_wait_for_a_slot(slot_held: SlotHeld) -> None:
    # A caller's transaction may hold locks a slot's holder needs: it goes straight in.
    project = slot_held.project
    actor = Actor.for_key(project.api_keys.get(), agent="chat-bot")
    with transaction.atomic():
        session, _ = session_open(project=project, name="conv-2", actor=actor)
        turns_upsert(session=session, docs=[DocInput(id="b", text="turn b")], actor=actor)
    assert slot_held.done == []  # the first call still holds the slot
    slot_held.finish()
    assert slot_held.done == ["a"]
    assert Turn.objects.filter(session__project=project).count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_import_holding_the_large_slot_does_not_hold_up_a_chat(
    one_slot: None, encode_held: tuple[threading.Event, threading.Event], make_project: Any
) -> None:
    entered, release = encode_held
    project, _ = make_project()
    actor = Actor.for_key(project.api_keys.get(), agent="importer")

    def import_calls() -> None:
        try:
            session, _ = session_open(project=project, name="history", actor=actor)
            docs = [DocInput(id=f"h{n}", text=f"old turn {n}") for n in range(LARGE_CALL_TEXTS)]
            turns_upsert(session=session, docs=docs, actor=actor)
        finally:
            connection.close()

    importer = threading.Thread(target=import_calls)
    importer.start()
    try:
        assert entered.wait(30)  # the import holds the only large slot, encoding
        done: list[str] = []
        _add(project, "conv-1", "a", done)  # a chat's add: a slot of its own
        assert done == ["a"] and importer.is_alive()
    finally:
        release.set()
        importer.join(30)
    assert Turn.objects.filter(session__project=project).count() == LARGE_CALL_TEXTS + 1
