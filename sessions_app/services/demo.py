"""The demo `make run` seeds: a project and its key, people with generated passwords, conversations.

Seeding is idempotent: a second run finds everything and changes nothing. The demo
key and the demo passwords are kept in the data folder in files only their owner
can read (mode 0600), so every `make run` can print them again.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from sessions_app import demo
from sessions_app.actors import Actor
from sessions_app.models import CannedResponse, Membership, Project, Session, Team
from sessions_app.services.console import console_note
from sessions_app.services.handoffs import (
    session_claim,
    session_hand_back,
    session_push,
    session_resolve,
)
from sessions_app.services.projects import api_key_authenticate, api_key_issue, project_create
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert

KEY_FILE = "demo-key.json"
LOGINS_FILE = "demo-logins.json"
# Published in the README before demo passwords were generated. An account that still
# has it gets a generated password at the next seed.
LEGACY_DEMO_PASSWORD = "moss-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    # None: the account existed before the demo and keeps the password it had.
    password: str | None


@dataclass(frozen=True)
class DemoSeeded:
    project: Project
    raw_key: str
    logins: list[DemoLogin]
    conversations_created: list[str]


def secret_file_write(path: Path, data: dict[str, str]) -> None:
    """Replace `path` with `data` as JSON, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when a stale partial file had other modes
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(partial, path)


def _json_read(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def demo_logins_read(*, data_dir: Path) -> dict[str, str]:
    """The generated demo passwords by username (empty before the first seed)."""
    return _json_read(data_dir / LOGINS_FILE)


def demo_seed(*, data_dir: Path) -> DemoSeeded:
    project, raw_key = _project_and_key(data_dir)
    logins = _people(project, data_dir)
    for shortcut, title, text in demo.DEMO_CANNED:
        CannedResponse.objects.get_or_create(
            project=project, shortcut=shortcut, defaults={"title": title, "text": text}
        )
    created = [
        conversation["name"]
        for conversation in demo.DEMO_CONVERSATIONS
        if _conversation(project, conversation)
    ]
    return DemoSeeded(
        project=project, raw_key=raw_key, logins=logins, conversations_created=created
    )


def _project_and_key(data_dir: Path) -> tuple[Project, str]:
    key_file = data_dir / KEY_FILE
    saved = _json_read(key_file)
    project = Project.objects.filter(public_id=saved.get("project_id")).first()
    if project is None:
        project, raw_key = project_create(name=demo.DEMO_PROJECT_NAME)
    else:
        raw_key = saved["project_key"]
        if api_key_authenticate(project_public_id=project.public_id, raw_key=raw_key) is None:
            _, raw_key = api_key_issue(project=project, label="demo")
    # Rewritten every time, which also narrows a file left readable by older versions.
    secret_file_write(key_file, {"project_id": project.public_id, "project_key": raw_key})
    return project, raw_key


def _people(project: Project, data_dir: Path) -> list[DemoLogin]:
    user_model = get_user_model()
    existing = {
        user.get_username(): user
        for user in user_model.objects.filter(username__in=[u for u, _, _ in demo.DEMO_USERS])
    }
    saved = demo_logins_read(data_dir=data_dir)
    to_set: dict[str, str] = {}
    for username, _, _ in demo.DEMO_USERS:
        user = existing.get(username)
        if user is None:
            to_set[username] = saved.get(username) or secrets.token_urlsafe(12)
        elif username not in saved and user.check_password(LEGACY_DEMO_PASSWORD):
            to_set[username] = secrets.token_urlsafe(12)
    # The file first: a password is never set in the database without being kept.
    kept = {**saved, **to_set}
    secret_file_write(data_dir / LOGINS_FILE, kept)
    with transaction.atomic():
        teams = {
            name: Team.objects.get_or_create(project=project, name=name)[0]
            for name in demo.DEMO_TEAMS
        }
        for username, role, team_names in demo.DEMO_USERS:
            user = existing.get(username) or user_model(username=username)
            if user.pk is None:
                user.is_staff = user.is_superuser = role == "admin"
            if username in to_set:
                user.set_password(to_set[username])
                user.save()
            Membership.objects.get_or_create(user=user, project=project, defaults={"role": role})
            for name in team_names:
                teams[name].members.add(user)
    return [
        DemoLogin(username=username, role=role, password=kept.get(username))
        for username, role, _ in demo.DEMO_USERS
    ]


@transaction.atomic  # all of it or none: an interrupted seed is finished by the next one
def _conversation(project: Project, conversation: dict[str, Any]) -> bool:
    """Seed one conversation; False when it exists (opening it again would add to its audit)."""
    if Session.objects.filter(project=project, name=conversation["name"]).exists():
        return False
    actor = Actor.system("demo")
    session, created = session_open(
        project=project, name=conversation["name"], actor=actor, metadata=conversation["metadata"]
    )
    if not created:
        return False
    users = {
        u.get_username(): u
        for u in get_user_model().objects.filter(
            username__in=[name for name, _, _ in demo.DEMO_USERS]
        )
    }
    for step, payload in conversation["steps"]:
        if step == "turns":
            docs = [DocInput(id=t["id"], text=t["text"], metadata=t["metadata"]) for t in payload]
            turns_upsert(session=session, docs=docs, actor=actor)
        elif step == "push":
            session_push(
                session=session,
                actor=Actor.system(payload.get("from_agent", "demo")),
                to_kind=payload["to"],
                to_target=payload.get("target", ""),
                reason=payload.get("reason", ""),
                from_agent=payload.get("from_agent", ""),
                from_channel=payload.get("from_channel", ""),
            )
        elif step == "claim":
            session_claim(session=session, user=users[payload["user"]])
        elif step == "hand_back":
            session_hand_back(
                session=session,
                user=users[payload["user"]],
                bot=payload["bot"],
                note=payload["note"],
            )
        elif step == "note":
            console_note(session=session, user=users[payload["user"]], text=payload["text"])
        elif step == "resolve":
            session_resolve(session=session, user=users[payload["user"]], note=payload["note"])
        else:
            raise ValueError(f"unknown demo step {step!r}")
    return True
