"""A server process remembers valid API keys, and forgets one the moment it is revoked.

The server is a real uvicorn process; revocations are made in this process (a
service call, the admin's delete, the management command), as an operator would,
and reach the server through PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import httpx
from django.core.management import call_command
from django.utils import timezone

from sessions_app.api_key_cache import ApiKeyCache
from sessions_app.models import ApiKey, Project
from sessions_app.services.projects import api_key_issue, api_key_revoke


def bot(base_url: str, project: Project, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"X-Project-Id": project.public_id, "X-Project-Key": key},
        timeout=30,
    )


def test_a_revoked_key_is_refused_by_the_next_call(
    live_server_url: str, make_project: Callable[..., tuple[Project, str]]
) -> None:
    project, key = make_project("Acme")
    with bot(live_server_url, project, key) as client:
        assert client.post("/sessions", json={"name": "conv-1"}).status_code == 201
        assert client.get("/sessions/conv-1").status_code == 200

        # An UPDATE that bypasses the model (and so tells no one) shows the key is cached...
        ApiKey.objects.filter(project=project).update(revoked_at=timezone.now())
        assert client.get("/sessions/conv-1").status_code == 200
        ApiKey.objects.filter(project=project).update(revoked_at=None)

        # ...and a revocation through the model reaches the server before the next call.
        api_key_revoke(api_key=ApiKey.objects.get(project=project))
        refused = client.get("/sessions/conv-1")
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "unauthorized"


def test_the_management_command_and_deleting_a_key_revoke_at_once(
    live_server_url: str, make_project: Callable[..., tuple[Project, str]]
) -> None:
    project, key = make_project("Acme")
    second, second_key = api_key_issue(project=project, label="second")
    with (
        bot(live_server_url, project, key) as first,
        bot(live_server_url, project, second_key) as other,
    ):
        assert first.get("/sessions").status_code == 200
        assert other.get("/sessions").status_code == 200

        prefix = ApiKey.objects.exclude(pk=second.pk).get(project=project).prefix
        call_command("api_key", "revoke", project.public_id, prefix, stdout=StringIO())
        assert first.get("/sessions").status_code == 401

        second.delete()
        assert other.get("/sessions").status_code == 401


def test_nothing_is_cached_while_no_listener_runs(
    make_project: Callable[..., tuple[Project, str]],
) -> None:
    cache = ApiKeyCache()  # never started: a process that hears of no revocation
    project, _ = make_project("Acme")
    api_key = ApiKey.objects.select_related("project").get(project=project)
    cache.put(api_key.key_hash, api_key, generation=cache.generation)
    assert cache.get(api_key.key_hash) is None


def test_a_lookup_that_began_before_an_invalidation_is_not_kept(
    make_project: Callable[..., tuple[Project, str]],
) -> None:
    cache = ApiKeyCache()
    cache.listening = True  # as if it listened
    project, _ = make_project("Acme")
    api_key = ApiKey.objects.select_related("project").get(project=project)
    began = cache.generation
    cache.invalidate()  # a revocation arrives while that lookup was reading the database
    cache.put(api_key.key_hash, api_key, generation=began)
    assert cache.get(api_key.key_hash) is None

    cache.put(api_key.key_hash, api_key, generation=cache.generation)
    cached = cache.get(api_key.key_hash)
    assert cached is not None and cached is not api_key  # a fresh instance per call
    assert (cached.pk, cached.project.public_id) == (api_key.pk, project.public_id)
