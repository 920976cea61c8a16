"""Opening a session: the resume path reads one row and writes only its audit row."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from sessions_app.actors import Actor
from sessions_app.errors import Conflict
from sessions_app.models import AuditEvent, Session
from sessions_app.selectors import session_find
from sessions_app.services.sessions import session_open


def _actor(project):
    return Actor.for_key(project.api_keys.get(), agent="voice-bot")


def test_session_find_reads_the_same_session_as_the_orm(make_project):
    project, _ = make_project()
    other, _ = make_project("Globex")
    session, _ = session_open(
        project=project, name="conv-1", actor=_actor(project), metadata={"customer_id": "c-9"}
    )
    Session.objects.filter(pk=session.pk).update(channels=["voice", "chat"], doc_count=3)

    found = session_find(project=project, name="conv-1")

    expected = Session.objects.get(pk=session.pk)
    assert found is not None
    for field in Session._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.metadata == {"customer_id": "c-9"}
    assert session_find(project=other, name="conv-1") is None
    assert session_find(project=project, name="conv-2") is None


def test_a_resume_records_who_opened_it_and_changes_nothing_else(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=_actor(project))

    resumed, created = session_open(
        project=project, name="conv-1", actor=_actor(project), channel="voice", device="phone"
    )

    assert not created and resumed.pk == session.pk
    opened = AuditEvent.objects.get(kind="session.opened")
    assert (opened.session_id, opened.actor_label, opened.channel, opened.device) == (
        session.pk,
        "voice-bot",
        "voice",
        "phone",
    )
    assert Session.objects.get(pk=session.pk).updated_at == session.updated_at


def test_a_resume_with_new_metadata_merges_it(make_project):
    project, _ = make_project()
    session_open(project=project, name="conv-1", actor=_actor(project), metadata={"a": "1"})

    resumed, _ = session_open(
        project=project, name="conv-1", actor=_actor(project), metadata={"b": "2"}
    )

    assert resumed.metadata == {"a": "1", "b": "2"}
    assert Session.objects.get(pk=resumed.pk).metadata == {"a": "1", "b": "2"}


@pytest.mark.django_db(transaction=True)
def test_a_resume_inside_a_callers_transaction_leaves_its_commit_durable(make_project):
    project, _ = make_project()
    session_open(project=project, name="conv-1", actor=_actor(project))

    with transaction.atomic():
        session_open(project=project, name="conv-1", actor=_actor(project))
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db(transaction=True)
def test_a_resume_on_its_own_records_the_row_and_leaves_commits_durable(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=_actor(project))

    session_open(project=project, name="conv-1", actor=_actor(project), channel="chat")

    opened = AuditEvent.objects.get(kind="session.opened")
    assert (opened.session_id, opened.project_id, opened.session_name, opened.channel) == (
        session.pk,
        project.pk,
        "conv-1",
        "chat",
    )
    assert opened.actor_key_id == project.api_keys.get().pk
    assert opened.created_at is not None and opened.data == {}
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db(transaction=True)
def test_a_resume_naming_its_model_or_known_metadata_is_a_plain_resume(make_project):
    project, _ = make_project()
    session, _ = session_open(
        project=project, name="conv-1", actor=_actor(project), metadata={"a": "1", "b": "2"}
    )

    resumed, created = session_open(
        project=project,
        name="conv-1",
        actor=_actor(project),
        model_id="moss-minilm",
        metadata={"b": "2"},
    )

    assert not created and resumed.metadata == {"a": "1", "b": "2"}
    assert AuditEvent.objects.filter(kind="session.opened", session=session).count() == 1
    assert Session.objects.get(pk=session.pk).updated_at == session.updated_at


@pytest.mark.django_db(transaction=True)
def test_a_resume_naming_another_model_is_a_conflict_and_records_nothing(make_project):
    project, _ = make_project()
    session_open(project=project, name="conv-1", actor=_actor(project))
    Session.objects.update(model_id="another-model")

    with pytest.raises(Conflict):
        session_open(
            project=project, name="conv-1", actor=_actor(project), model_id="all-MiniLM-L6-v2"
        )

    assert not AuditEvent.objects.filter(kind="session.opened").exists()
