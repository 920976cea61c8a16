import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sessions_app.models import ApiKey, AuditEvent, Project, Session
from sessions_app.services.projects import api_key_authenticate


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_project_prints_an_id_and_a_working_key(db):
    created = json.loads(run("create_project", "Acme", "--json"))
    assert created["name"] == "Acme"
    api_key = api_key_authenticate(
        project_public_id=created["project_id"], raw_key=created["project_key"]
    )
    assert api_key is not None and api_key.project.name == "Acme"
    # Only the hash is stored.
    assert created["project_key"] not in {k.key_hash for k in ApiKey.objects.all()}


def test_api_key_issue_and_revoke(db):
    created = json.loads(run("create_project", "Acme", "--json"))
    issued = json.loads(run("api_key", "issue", created["project_id"], "--label", "ci", "--json"))
    new_key = ApiKey.objects.get(label="ci")
    assert "active" in run("api_key", "list", created["project_id"])
    run("api_key", "revoke", created["project_id"], new_key.prefix)
    assert (
        api_key_authenticate(project_public_id=created["project_id"], raw_key=issued["project_key"])
        is None
    )
    assert (
        api_key_authenticate(
            project_public_id=created["project_id"], raw_key=created["project_key"]
        )
        is not None
    )


def test_api_key_for_an_unknown_project_fails_clearly(db):
    with pytest.raises(CommandError, match="no project with id 'proj_nope'"):
        run("api_key", "list", "proj_nope")


def test_seed_demo_is_idempotent_and_prints_a_working_key(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    first = run("seed_demo")
    events = AuditEvent.objects.count()
    second = run("seed_demo")
    assert AuditEvent.objects.count() == events  # nothing re-opened, nothing re-written
    assert Project.objects.count() == 1
    assert Session.objects.filter(status="waiting").count() >= 2
    key = json.loads((tmp_path / "demo-key.json").read_text())
    assert key["project_key"] in first and key["project_key"] in second
    assert api_key_authenticate(project_public_id=key["project_id"], raw_key=key["project_key"])
    assert Session.objects.get(name="conv-123").doc_count == 5
    assert Session.objects.get(name="ticket-9034").status == "resolved"
    assert Session.objects.get(name="conv-771").status == "bot"


def test_prune_events_keeps_what_is_within_retention(api):
    from datetime import timedelta

    from django.utils import timezone

    from sessions_app.models import Event

    api.post("/sessions", {"name": "old"})
    api.post("/sessions", {"name": "new"})
    Event.objects.filter(session_name="old").update(created_at=timezone.now() - timedelta(days=20))
    out = StringIO()
    call_command("prune_events", stdout=out)
    assert out.getvalue().strip() == "deleted 1 events"
    assert list(Event.objects.values_list("session_name", flat=True)) == ["new"]


def test_reencode_contexts_reaches_the_named_project_only(db, make_project):
    from sessions_app.actors import Actor
    from sessions_app.models import Turn
    from sessions_app.services.sessions import session_open
    from sessions_app.services.turns import DocInput, turns_upsert

    sessions = []
    for name in ("ours", "theirs"):
        project, _ = make_project(name=name)
        session, _ = session_open(project=project, name="conv", actor=Actor.system())
        docs = [DocInput("t1", "Can you confirm the card?", {"role": "bot"})]
        docs.append(DocInput("t2", "It ends in 4417.", {"role": "customer"}))
        turns_upsert(session=session, docs=docs, actor=Actor.system())
        sessions.append(session)
    Turn.objects.update(context_embedding=None)  # a stand-in for vectors of an earlier kind
    ours, theirs = sessions
    out = run("reencode_contexts", "--project", ours.project.public_id)
    assert f"session {ours.pk} done" in out
    assert "sessions done: 1." in out
    assert not Turn.objects.filter(session=ours, context_embedding=None).exists()
    assert Turn.objects.filter(session=theirs, context_embedding=None).count() == 2
    # --after goes on from a session: nothing of ours again, theirs now.
    out = run("reencode_contexts", "--after", str(ours.pk))
    assert f"session {theirs.pk} done" in out and f"session {ours.pk} done" not in out
    assert not Turn.objects.filter(context_embedding=None).exists()
    with pytest.raises(CommandError, match="no project"):
        run("reencode_contexts", "--project", "nope")


def test_reencode_contexts_plain_gives_each_turn_the_stored_text_encoders_vector(db, make_project):
    import numpy as np

    from sessions_app import embeddings
    from sessions_app.actors import Actor
    from sessions_app.models import Turn
    from sessions_app.services.sessions import session_open
    from sessions_app.services.turns import DocInput, turns_upsert

    project, _ = make_project(name="ours")
    session, _ = session_open(project=project, name="conv", actor=Actor.system())
    texts = ["Can you confirm the card?", "It ends in 4417.", "Thanks, refund approved."]
    docs = [DocInput(f"t{n}", text, {"role": "bot"}) for n, text in enumerate(texts)]
    turns_upsert(session=session, docs=docs, actor=Actor.system())
    # Full-precision plain vectors, as turns stored before the int8 twin have; one pending.
    for turn, vector in zip(
        Turn.objects.order_by("seq"), embeddings.texts_embed(texts), strict=True
    ):
        Turn.objects.filter(pk=turn.pk).update(embedding=vector.tolist())
    Turn.objects.filter(doc_id="t2").update(embedding=None)

    out = run("reencode_contexts", "--plain")
    assert "Context and plain vectors computed again; sessions done: 1." in out
    stored = {t.doc_id: t.embedding for t in Turn.objects.all()}
    expected = embeddings.stored_texts_embed(texts[:2])
    assert np.allclose(np.array([stored["t0"], stored["t1"]]), expected, atol=1e-6)
    assert stored["t2"] is None  # left to the backfill
