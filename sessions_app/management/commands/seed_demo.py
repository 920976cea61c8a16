"""Idempotent demo data, and the banner `make run` prints before serving."""

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from sessions_app import demo
from sessions_app.actors import Actor
from sessions_app.models import Membership, Project, Session, Team
from sessions_app.services.handoffs import (
    session_claim,
    session_hand_back,
    session_push,
    session_resolve,
)
from sessions_app.services.projects import (
    api_key_authenticate,
    api_key_issue,
    project_create,
)
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert


class Command(BaseCommand):
    help = "Create the demo project, people and conversations (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        project, raw_key = self._project_and_key()
        self._people(project)
        for conversation in demo.DEMO_CONVERSATIONS:
            self._conversation(project, conversation)
        base = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "moss-web is starting",
                    f"  Console:       {base}/console/",
                    f"  API docs:      {base}/api/v1/docs",
                    f"  Admin:         {base}/admin/",
                    f"  Health:        {base}/healthz",
                    f"  Demo project:  {project.public_id}",
                    f"  Demo key:      {raw_key}",
                    "  Logins:        "
                    + ", ".join(f"{u} ({role})" for u, role, _ in demo.DEMO_USERS)
                    + f"; password {demo.DEMO_PASSWORD}",
                    "",
                ]
            )
        )

    def _project_and_key(self) -> tuple[Project, str]:
        # The demo key is kept in the data folder so every `make run` can print it.
        key_file = settings.DATA_DIR / "demo-key.json"
        saved = json.loads(key_file.read_text()) if key_file.exists() else {}
        project = Project.objects.filter(public_id=saved.get("project_id")).first()
        if project is None:
            project, raw_key = project_create(name=demo.DEMO_PROJECT_NAME)
        else:
            raw_key = saved["project_key"]
            if api_key_authenticate(project_public_id=project.public_id, raw_key=raw_key) is None:
                _, raw_key = api_key_issue(project=project, label="demo")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(json.dumps({"project_id": project.public_id, "project_key": raw_key}))
        return project, raw_key

    @transaction.atomic
    def _people(self, project: Project) -> None:
        user_model = get_user_model()
        teams = {
            name: Team.objects.get_or_create(project=project, name=name)[0]
            for name in demo.DEMO_TEAMS
        }
        for username, role, team_names in demo.DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=username)
            if created:
                user.set_password(demo.DEMO_PASSWORD)
                user.is_staff = user.is_superuser = role == "admin"
                user.save()
            Membership.objects.get_or_create(user=user, project=project, defaults={"role": role})
            for name in team_names:
                teams[name].members.add(user)

    def _conversation(self, project: Project, conversation: dict[str, Any]) -> None:
        if Session.objects.filter(project=project, name=conversation["name"]).exists():
            return  # seeded before; opening it again would add to its audit trail
        actor = Actor.system("demo")
        session, created = session_open(
            project=project,
            name=conversation["name"],
            actor=actor,
            metadata=conversation["metadata"],
        )
        if not created:
            return
        users = {
            u.get_username(): u
            for u in get_user_model().objects.filter(
                username__in=[name for name, _, _ in demo.DEMO_USERS]
            )
        }
        for step, payload in conversation["steps"]:
            if step == "turns":
                docs = [
                    DocInput(id=t["id"], text=t["text"], metadata=t["metadata"]) for t in payload
                ]
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
            elif step == "resolve":
                session_resolve(session=session, user=users[payload["user"]], note=payload["note"])
            else:
                raise ValueError(f"unknown demo step {step!r}")
        self.stdout.write(f"  demo conversation {session.name}: {session.doc_count} turns")
