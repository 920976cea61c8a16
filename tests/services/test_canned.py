"""Canned responses: placeholders filled from the session's metadata, as plain text."""

from sessions_app.actors import Actor
from sessions_app.models import CannedResponse
from sessions_app.services.canned import canned_fill, canned_for_session
from sessions_app.services.sessions import session_open


def test_placeholders_come_from_metadata_and_unknown_ones_stay():
    text = "Hi {{customer_name}}, order {{ order_id }} is on its way. {{missing}}"
    filled = canned_fill(text=text, metadata={"customer_name": "Dana", "order_id": "A-7"})
    assert filled == "Hi Dana, order A-7 is on its way. {{missing}}"


def test_values_are_inserted_as_text_never_interpreted():
    filled = canned_fill(text="Hi {{customer_name}}", metadata={"customer_name": "<b>{{x}}</b>"})
    assert filled == "Hi <b>{{x}}</b>"


def test_a_session_sees_its_own_projects_responses_only(make_project):
    acme, _ = make_project("Acme")
    globex, _ = make_project("Globex")
    CannedResponse.objects.create(
        project=acme, shortcut="hi", title="Hello", text="Hi {{customer_name}}"
    )
    CannedResponse.objects.create(project=globex, shortcut="secret", title="Other", text="x")
    session, _ = session_open(
        project=acme,
        name="conv-1",
        actor=Actor.for_key(acme.api_keys.get()),
        metadata={"customer_name": "Dana"},
    )

    filled = canned_for_session(session=session)

    assert [(c.shortcut, c.text) for c in filled] == [("hi", "Hi Dana")]
