"""Every page is sent with a Content-Security-Policy that allows no inline script or style, and
the templates give the browser none to refuse."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sessions_app.actors import Actor
from sessions_app.models import Project
from sessions_app.services.sessions import session_open
from tests.servers import ROOT

TEMPLATES = ROOT / "templates"


def directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def signed_in(
    make_project: Callable[..., tuple[Project, str]], make_user: Callable[..., User]
) -> tuple[Client, Project]:
    project, _ = make_project("Acme")
    user = make_user("root", project, role="admin")
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    session_open(project=project, name="conv-1", actor=Actor.system("bot"))
    client = Client()
    client.force_login(user)
    return client, project


def test_every_page_carries_a_policy_without_inline_code(signed_in: tuple[Client, Project]) -> None:
    client, project = signed_in
    p = project.public_id
    pages = [
        "/accounts/login/",
        "/console/",
        f"/console/p/{p}/s/conv-1/",
        f"/supervise/p/{p}/",
        f"/supervise/p/{p}/s/conv-1/",
        f"/supervise/p/{p}/dashboard/",
        "/admin/",
        "/api/v1/docs",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        found = directives(policy)
        assert found["script-src"] == ["'self'"] and found["style-src"] == ["'self'"], path
        assert found["default-src"] == ["'self'"] and found["object-src"] == ["'none'"], path
        assert found["frame-ancestors"] == ["'none'"] and found["base-uri"] == ["'none'"], path


INLINE_CODE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"),
    "a <style> element": re.compile(r"<style\b"),
    "a style attribute": re.compile(r"\sstyle="),
    "an event handler attribute": re.compile(r"\son[a-z]+=", re.I),
    "an hx-on handler (evaluated code)": re.compile(r"\s(data-)?hx-on"),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


TEMPLATE_COMMENT = re.compile(r"{% comment %}.*?{% endcomment %}|{#.*?#}", re.S)


@pytest.mark.parametrize("kind", INLINE_CODE)
def test_templates_hold_no_inline_code(kind: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in TEMPLATES.rglob("*.html")
        if INLINE_CODE[kind].search(TEMPLATE_COMMENT.sub("", path.read_text()))
    ]
    assert not offenders, f"{kind} in {offenders}"
