"""A scripted history for the supervisor tests, built with the real services.

Project "Acme": ana and ben are agents, sam a supervisor, root an admin; eve
supervises "Globex". conv-1 goes voice bot -> chat bot -> humans (ana claims,
replies by email, hands back) -> team billing (ben claims and resolves).
conv-2 is escalated from SMS and still waits. `times_set` then pins every
handoff to known times so the dashboard's figures are exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.models import Handoff, Membership, Project, Session, Team
from sessions_app.services.handoffs import (
    session_claim,
    session_hand_back,
    session_push,
    session_resolve,
)
from sessions_app.services.projects import project_create
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert

PASSWORD = "pw-supervise-2026"


@dataclass
class History:
    project: Project
    other: Project
    users: dict[str, User]
    conv1: Session
    conv2: Session
    now: datetime


@functools.cache
def _password_hash() -> str:
    # Hashing is deliberately slow; five users per test need it only once per run.
    return make_password(PASSWORD)


def _user(username: str, project: Project, role: str) -> User:
    user = User.objects.create(username=username, password=_password_hash())
    Membership.objects.create(user=user, project=project, role=role)
    return user


TEXTS = {
    "t1": "I was charged twice for $49.99.",
    "t2": "I opened a refund for the duplicate.",
    "t3": "Where is my refund? A person.",
    "t4": "Refund issued March 4th.",
    "t5": "Still not on my statement.",
    "s1": "Cancel my plan please.",
}


@functools.cache
def _vectors() -> dict[str, list[float]]:
    """The real model's vectors for the script's texts, computed once per run in one batch.

    Passing them as client embeddings keeps each test from re-running the model
    on the same six sentences; search still scores real MiniLM vectors.
    """
    texts = list(TEXTS.values())
    return {t: v.tolist() for t, v in zip(texts, embeddings.texts_embed(texts), strict=True)}


def _turn(doc_id: str, channel: str, role: str, author: str, device: str) -> DocInput:
    meta = {"channel": channel, "role": role, "author": author, "device": device}
    text = TEXTS[doc_id]
    return DocInput(id=doc_id, text=text, metadata=meta, embedding=_vectors()[text])


def history_build() -> History:
    project, _ = project_create(name="Acme")
    other, _ = project_create(name="Globex")
    key = project.api_keys.get()
    users = {
        "ana": _user("ana", project, "agent"),
        "ben": _user("ben", project, "agent"),
        "sam": _user("sam", project, "supervisor"),
        "root": _user("root", project, "admin"),
        "eve": _user("eve", other, "supervisor"),
    }
    Team.objects.create(project=project, name="billing").members.add(users["ben"])
    voice = Actor.for_key(key, agent="voice-bot")
    chat = Actor.for_key(key, agent="chat-bot")

    conv1, _ = session_open(
        project=project,
        name="conv-1",
        actor=voice,
        metadata={"customer_id": "cust-1"},
        channel="voice",
        device="phone",
    )
    turns_upsert(
        session=conv1,
        actor=voice,
        docs=[
            _turn("t1", "voice", "customer", "Dana", "phone"),
            _turn("t2", "voice", "bot", "voice-bot", "ivr"),
        ],
    )
    session_push(
        session=conv1, actor=voice, to_kind="bot", to_target="chat-bot", from_channel="voice"
    )
    session_open(project=project, name="conv-1", actor=chat, channel="chat", device="web")
    turns_upsert(
        session=conv1,
        actor=chat,
        docs=[_turn("t3", "chat", "customer", "Dana", "laptop")],
    )
    session_push(
        session=conv1, actor=chat, to_kind="humans", reason="wants a person", from_channel="chat"
    )
    session_claim(session=conv1, user=users["ana"])
    turns_upsert(
        session=conv1,
        actor=Actor.for_user(users["ana"]),
        docs=[_turn("t4", "email", "agent", "ana", "console")],
    )
    session_hand_back(session=conv1, user=users["ana"], bot="chat-bot", note="refund explained")
    turns_upsert(
        session=conv1,
        actor=chat,
        docs=[_turn("t5", "chat", "customer", "Dana", "laptop")],
    )
    session_push(
        session=conv1, actor=chat, to_kind="team", to_target="billing", from_channel="chat"
    )
    session_claim(session=conv1, user=users["ben"])
    session_resolve(session=conv1, user=users["ben"], note="bank trace sent")

    sms = Actor.for_key(key, agent="sms-bot")
    conv2, _ = session_open(project=project, name="conv-2", actor=sms, channel="sms")
    turns_upsert(
        session=conv2,
        actor=sms,
        docs=[_turn("s1", "sms", "customer", "Lee", "mobile")],
    )
    session_push(session=conv2, actor=sms, to_kind="humans", from_channel="sms")
    return History(project, other, users, conv1, conv2, timezone.now())


def times_set(history: History) -> None:
    """Pin handoff times around `history.now` (t0 = two hours before it).

    conv-1: v1 three days ago; v2 at t0+10m, claimed 3 min later; v3 at t0+20m;
    v4 at t0+60m, claimed 40 min later; v5 (resolved) at t0+110m.
    conv-2: v1 at t0+30m, still waiting.
    """
    now = history.now
    t0 = now - timedelta(hours=2)
    minutes = timedelta(minutes=1)
    times = {
        (history.conv1, 1): (now - timedelta(days=3), None),
        (history.conv1, 2): (t0 + 10 * minutes, t0 + 13 * minutes),
        (history.conv1, 3): (t0 + 20 * minutes, None),
        (history.conv1, 4): (t0 + 60 * minutes, t0 + 100 * minutes),
        (history.conv1, 5): (t0 + 110 * minutes, None),
        (history.conv2, 1): (t0 + 30 * minutes, None),
    }
    for (session, version), (created, claimed) in times.items():
        Handoff.objects.filter(session=session, version=version).update(
            created_at=created, claimed_at=claimed
        )
    Session.objects.filter(pk=history.conv2.pk).update(waiting_since=t0 + 30 * minutes)
    # Pinned times bypass the service that keeps each handoff's episode start: fill it
    # again as migration 0017 does.
    migration = import_module("sessions_app.migrations.0017_handoff_episode_started_at")
    with connection.cursor() as cursor:
        cursor.execute(migration.HANDOFF_EPISODES_FILL)
