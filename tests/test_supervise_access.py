"""Who may see which supervisor page and export. Anything not theirs is a 404."""

import pytest
from django.test import Client

from tests.supervise_history import History, history_build

OK, MISSING = 200, 404


@pytest.fixture
def history(db: None) -> History:
    return history_build()


def client_for(history: History, username: str) -> Client:
    client = Client()
    client.force_login(history.users[username])
    return client


def session_urls(pid: str, name: str) -> list[str]:
    base = f"/supervise/p/{pid}/s/{name}/"
    return [base, f"{base}received/2/", f"{base}export.jsonl", f"{base}export.csv"]


# conv-1 was claimed by ana and by ben; conv-2 was never held by an agent.
MATRIX = [
    # user, conv-1 pages, conv-2 pages, sessions list, dashboard
    ("ana", OK, MISSING, OK, MISSING),
    ("ben", OK, MISSING, OK, MISSING),
    ("sam", OK, OK, OK, OK),
    ("root", OK, OK, OK, OK),
    ("eve", MISSING, MISSING, MISSING, MISSING),
]


@pytest.mark.parametrize(("username", "conv1", "conv2", "listing", "dashboard"), MATRIX)
def test_every_page_and_export_follows_the_role_matrix(
    history: History, username: str, conv1: int, conv2: int, listing: int, dashboard: int
) -> None:
    client = client_for(history, username)
    pid = history.project.public_id
    for url in session_urls(pid, "conv-1"):
        assert client.get(url).status_code == conv1, url
    for url in [*session_urls(pid, "conv-2")[:1], *session_urls(pid, "conv-2")[2:]]:
        assert client.get(url).status_code == conv2, url
    assert client.get(f"/supervise/p/{pid}/").status_code == listing
    assert client.get(f"/supervise/p/{pid}/dashboard/").status_code == dashboard


def test_an_agent_lists_only_sessions_they_held(history: History) -> None:
    page = client_for(history, "ana").get(f"/supervise/p/{history.project.public_id}/")
    names = [s.name for s in page.context["page"].object_list]
    assert names == ["conv-1"]


def test_a_supervisor_lists_every_session_of_the_project(history: History) -> None:
    page = client_for(history, "sam").get(f"/supervise/p/{history.project.public_id}/")
    assert sorted(s.name for s in page.context["page"].object_list) == ["conv-1", "conv-2"]


def test_an_agent_cannot_find_other_sessions_through_search(history: History) -> None:
    page = client_for(history, "ana").get(
        f"/supervise/p/{history.project.public_id}/", {"q": "cancel my plan"}
    )
    assert {hit.session_name for hit in page.context["hits"]} <= {"conv-1"}
    assert "Cancel my plan" not in page.content.decode()


def test_a_user_of_another_project_gets_404_even_with_a_real_session_name(
    history: History,
) -> None:
    client = client_for(history, "eve")
    response = client.get(f"/supervise/p/{history.project.public_id}/s/conv-1/export.csv")
    assert response.status_code == 404
    # And their own project's URLs cannot reach Acme's sessions either.
    response = client.get(f"/supervise/p/{history.other.public_id}/s/conv-1/")
    assert response.status_code == 404


def test_an_as_received_version_that_does_not_exist_is_404(history: History) -> None:
    url = f"/supervise/p/{history.project.public_id}/s/conv-1/received/99/"
    assert client_for(history, "sam").get(url).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(history: History) -> None:
    response = Client().get(f"/supervise/p/{history.project.public_id}/s/conv-1/export.jsonl")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_index_redirects_a_member_of_one_project_to_its_sessions(history: History) -> None:
    response = client_for(history, "sam").get("/supervise/")
    assert response.status_code == 302
    assert response["Location"] == f"/supervise/p/{history.project.public_id}/"


def test_the_index_lists_the_projects_of_a_member_of_several(history: History) -> None:
    from sessions_app.models import Membership

    Membership.objects.create(user=history.users["sam"], project=history.other, role="agent")
    response = client_for(history, "sam").get("/supervise/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f"/supervise/p/{history.project.public_id}/" in body
    assert f"/supervise/p/{history.other.public_id}/" in body
    assert f"/supervise/p/{history.other.public_id}/dashboard/" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/supervise/p/%00/",
        "/supervise/p/%00/dashboard/",
        "/supervise/p/{pid}/s/%00/",
        "/supervise/p/{pid}/s/conv%001/export.csv",
        "/supervise/p/{pid}/s/conv-1%00/received/2/",
        "/console/p/%00/s/conv-1/",
        "/console/p/{pid}/s/%00/",
        "/console/p/{pid}/s/%00/updates/",
    ],
)
def test_a_project_or_session_that_cannot_exist_is_a_404(history: History, path: str) -> None:
    """A NUL ("%00") reached PostgreSQL, which refuses it in text: a 500."""
    client = Client(raise_request_exception=False)
    client.force_login(history.users["sam"])
    response = client.get(path.format(pid=history.project.public_id))
    assert response.status_code == MISSING
