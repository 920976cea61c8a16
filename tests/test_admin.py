"""Django admin: every model listed, keys shown once and revocable, history read-only."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client

from sessions_app.models import ApiKey, AuditEvent, CannedResponse, Project, Session, Turn
from sessions_app.services.projects import api_key_authenticate
from tests.supervise_history import History, history_build


@pytest.fixture
def history(db: None) -> History:
    return history_build()


@pytest.fixture
def operator(history: History) -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "unused")
    client = Client()
    client.force_login(user)
    return client


MODELS = ["project", "apikey", "membership", "team", "session", "turn", "handoff", "auditevent"]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_searchable_filterable_list(
    history: History, operator: Client, model: str
) -> None:
    url = f"/admin/sessions_app/{model}/"
    assert operator.get(url).status_code == 200
    assert operator.get(url, {"q": "conv"}).status_code == 200


def test_lists_filter_by_their_columns(history: History, operator: Client) -> None:
    response = operator.get("/admin/sessions_app/session/", {"status__exact": "waiting"})
    assert [s.name for s in response.context["cl"].result_list] == ["conv-2"]
    response = operator.get("/admin/sessions_app/auditevent/", {"kind": "claimed"})
    assert response.context["cl"].result_count == 2
    response = operator.get("/admin/sessions_app/handoff/", {"to_kind__exact": "resolved"})
    assert response.context["cl"].result_count == 1


def test_session_page_shows_turns_read_only_without_embeddings(
    history: History, operator: Client
) -> None:
    response = operator.get(f"/admin/sessions_app/session/{history.conv1.pk}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Refund issued March 4th." in body
    assert "embedding" not in body and "search_vector" not in body
    assert 'name="turns-0-text"' not in body  # read-only: no inputs for turns
    turn = Turn.objects.get(session=history.conv1, doc_id="t1")
    assert operator.get(f"/admin/sessions_app/turn/{turn.pk}/change/").status_code == 200
    assert (
        "embedding"
        not in operator.get(f"/admin/sessions_app/turn/{turn.pk}/change/").content.decode()
    )


def test_a_key_created_in_the_admin_is_shown_once_and_works(
    history: History, operator: Client
) -> None:
    response = operator.post(
        "/admin/sessions_app/apikey/add/",
        {"project": history.project.pk, "label": "ivr"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 2  # ours, and the admin's "added successfully"
    raw_key = next(m for m in shown if "moss_" in m).split(": ", 1)[1].split(" ")[0]
    api_key = api_key_authenticate(project_public_id=history.project.public_id, raw_key=raw_key)
    assert api_key is not None and api_key.label == "ivr"
    assert raw_key not in ApiKey.objects.get(pk=api_key.pk).key_hash
    again = operator.get(f"/admin/sessions_app/apikey/{api_key.pk}/change/")
    assert raw_key not in again.content.decode()


def test_the_revoke_action_revokes_keys(history: History, operator: Client) -> None:
    api_key = history.project.api_keys.get()
    response = operator.post(
        "/admin/sessions_app/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_audit_events_cannot_be_added_changed_or_deleted(
    history: History, operator: Client
) -> None:
    event = AuditEvent.objects.filter(project=history.project).first()
    assert event is not None
    before = AuditEvent.objects.count()
    assert operator.get("/admin/sessions_app/auditevent/add/").status_code == 403
    change_url = f"/admin/sessions_app/auditevent/{event.pk}/change/"
    assert operator.get(change_url).status_code == 200  # view only
    operator.post(change_url, {"kind": "forged"})
    assert operator.post(f"/admin/sessions_app/auditevent/{event.pk}/delete/").status_code == 403
    operator.post(
        "/admin/sessions_app/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    event.refresh_from_db()
    assert event.kind != "forged"
    assert AuditEvent.objects.count() == before


def test_a_project_with_history_cannot_be_deleted_from_the_admin(
    history: History, operator: Client
) -> None:
    operator.post(f"/admin/sessions_app/project/{history.project.pk}/delete/", {"post": "yes"})
    assert Project.objects.filter(pk=history.project.pk).exists()


def test_deleting_a_session_in_the_admin_is_audited(history: History, operator: Client) -> None:
    operator.post(f"/admin/sessions_app/session/{history.conv2.pk}/delete/", {"post": "yes"})
    assert not Session.objects.filter(pk=history.conv2.pk).exists()
    deleted = AuditEvent.objects.get(kind="session.deleted")
    assert deleted.session_name == "conv-2" and deleted.actor_label == "operator"


def _staff(username: str, *permissions: str, supervises: Project | None = None) -> Client:
    from django.contrib.auth.models import Permission

    from sessions_app.models import Membership, Role

    user = get_user_model().objects.create_user(username, is_staff=True)
    for codename in permissions:
        permission = Permission.objects.get(
            codename=codename, content_type__app_label="sessions_app"
        )
        user.user_permissions.add(permission)
    if supervises is not None:
        Membership.objects.create(user=user, project=supervises, role=Role.SUPERVISOR)
    client = Client()
    client.force_login(user)
    return client


def test_a_user_who_may_only_view_keys_cannot_revoke_them(history: History) -> None:
    """Django offers an action to whoever sees the list unless it names a permission."""
    viewer = _staff("viewer", "view_apikey")
    key = ApiKey.objects.filter(project=history.project).first()
    assert key is not None
    viewer.post("/admin/sessions_app/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_supervisors_admin_shows_their_projects_only(history: History) -> None:
    eve = _staff("eve2", "view_session", "change_session", supervises=history.other)
    Session.objects.create(project=history.other, name="globex-1")
    listing = eve.get("/admin/sessions_app/session/")
    assert listing.status_code == 200
    assert "globex-1" in listing.text
    assert "conv-1" not in listing.text and history.project.name not in listing.text
    page = eve.get(f"/admin/sessions_app/session/{history.conv1.pk}/change/")
    assert page.status_code == 302  # "does not exist", as for a missing id
    assert eve.get("/admin/sessions_app/session/?q=conv").text.count("conv-") == 0


def test_session_metadata_edited_in_the_admin_follows_the_apis_rules(
    history: History, operator: Client
) -> None:
    """A number or a list there made the API's session list and the console answer 500."""
    url = f"/admin/sessions_app/session/{history.conv2.pk}/change/"
    for bad in ('{"customer_id": 42}', '["x"]', '"x"'):
        response = operator.post(url, {"metadata": bad, **_no_inlines()})
        assert response.status_code == 200 and "errorlist" in response.text
    history.conv2.refresh_from_db()
    assert all(isinstance(v, str) for v in history.conv2.metadata.values())
    response = operator.post(url, {"metadata": '{"customer_id": "c-42"}', **_no_inlines()})
    assert response.status_code == 302
    history.conv2.refresh_from_db()
    assert history.conv2.metadata == {"customer_id": "c-42"}


def _no_inlines() -> dict[str, str]:
    fields: dict[str, str] = {}
    for prefix in ("handoffs", "turns"):
        fields |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return fields


def test_turns_and_handoffs_cannot_be_deleted_alone(history: History, operator: Client) -> None:
    turn = Turn.objects.filter(session=history.conv1).first()
    assert turn is not None
    operator.post(f"/admin/sessions_app/turn/{turn.pk}/delete/", {"post": "yes"})
    assert Turn.objects.filter(pk=turn.pk).exists()


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("48213957260", "entirely numeric"),
        ("specialist-kim", "too similar to the username"),
        ("password123", "too common"),
        ("k7#qA", "too short"),
    ],
)
def test_a_user_added_in_the_admin_needs_a_strong_password(
    operator: Client, password: str, problem: str
) -> None:
    response = operator.post(
        "/admin/auth/user/add/",
        {"username": "specialist-kim", "password1": password, "password2": password},
    )
    assert response.status_code == 200  # the form again, with the validator's message
    assert problem in response.content.decode()
    assert not get_user_model().objects.filter(username="specialist-kim").exists()


def test_two_admins_adding_one_shortcut_at_once_get_a_form_error_not_a_500(
    transactional_db: None,
) -> None:
    """The other admin's row is inserted, not yet committed, when this form validates:
    its unique check cannot see it. The form waits on the project's row lock instead,
    then reports the duplicate as the form's error."""
    project = Project.objects.create(name="Acme")
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "unused")
    client = Client()
    client.force_login(user)
    inserted, release = threading.Event(), threading.Event()

    def other_admin() -> None:
        with transaction.atomic():
            Project.objects.select_for_update(no_key=True).get(pk=project.pk)  # as the form does
            CannedResponse.objects.create(project=project, shortcut="refund", text="first")
            inserted.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_admin)
    thread.start()
    assert inserted.wait(10)
    threading.Timer(0.5, release.set).start()
    response = client.post(
        "/admin/sessions_app/cannedresponse/add/",
        {"project": project.pk, "shortcut": "refund", "title": "", "text": "second"},
    )
    thread.join()
    assert response.status_code == 200
    assert "Canned response with this Project and Shortcut already exists" in (
        response.content.decode()
    )
    assert list(CannedResponse.objects.values_list("text", flat=True)) == ["first"]
