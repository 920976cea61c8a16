from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from sessions_app.models import Membership, Project, Team
from sessions_app.services.projects import project_create
from tests.browsers import CHROMIUM, chromium
from tests.servers import other_database_sessions_end, server_process


def need(condition: bool, reason: str) -> None:
    """Skip when the machine lacks something, except in CI, where it must be there."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must be able to run this test: {reason}")
    pytest.skip(reason)


class ApiClient:
    """Django's test client, speaking to API v1 as one project's bot."""

    def __init__(self, project: Project, key: str) -> None:
        self.project = project
        self.key = key
        self.client = Client(headers={"X-Project-Id": project.public_id, "X-Project-Key": key})

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(f"/api/v1{path}", body, content_type="application/json")

    def delete(self, path: str) -> Any:
        return self.client.delete(f"/api/v1{path}")


@pytest.fixture(autouse=True)
def throttle_counters_cleared(settings: Any) -> None:
    """Each test starts with fresh throttle counters: the local-memory cache is cleared, and
    a shared Redis cache (never flushed from here) gets a key prefix of this test's own."""
    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()
    else:
        default = settings.CACHES["default"]
        prefix = f"test-{uuid.uuid4().hex}"
        settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": prefix}}


@pytest.fixture
def wsgi_app(db: None) -> Iterator[Any]:
    """The real WSGI app for in-process HTTP clients (httpx, schemathesis), inside the test's
    transaction. Like Django's test client, it keeps a request from closing the test's
    database connection."""
    from moss_web.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def make_project(db: None) -> Callable[..., tuple[Project, str]]:
    def make(name: str = "Acme") -> tuple[Project, str]:
        return project_create(name=name)

    return make


@pytest.fixture
def api(make_project: Callable[..., tuple[Project, str]]) -> ApiClient:
    return ApiClient(*make_project("Acme"))


@pytest.fixture
def other_api(make_project: Callable[..., tuple[Project, str]]) -> ApiClient:
    return ApiClient(*make_project("Globex"))


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(
        username: str,
        project: Project | None = None,
        role: str = "agent",
        teams: tuple[str, ...] = (),
    ) -> User:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_user(username=username, password="pw-" + username)
        if project is not None:
            Membership.objects.update_or_create(user=user, project=project, defaults={"role": role})
            for name in teams:
                Team.objects.get_or_create(project=project, name=name)[0].members.add(user)
        return user

    return make


@pytest.fixture(scope="session")
def moss_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """One real uvicorn process for the whole run, serving the test database."""
    with django_db_blocker.unblock():
        with server_process() as base_url:
            yield base_url
        other_database_sessions_end()


@pytest.fixture
def live_server_url(moss_server: str, transactional_db: None) -> str:
    """The real server's URL. Data a test creates must be committed for the server to see
    it: this fixture uses transactional_db, which commits and flushes afterwards."""
    return moss_server


@pytest.fixture
def chromium_path() -> str:
    need(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def browser(chromium_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Real Chromium through Playwright."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium(chromium_path) as launched:
        yield launched
