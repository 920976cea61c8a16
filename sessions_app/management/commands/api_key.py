import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.models import ApiKey, Project
from sessions_app.services.projects import api_key_issue, api_key_revoke


class Command(BaseCommand):
    help = "Issue, revoke or list a project's API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        issue = sub.add_parser("issue", help="issue a new key (shown once)")
        issue.add_argument("project_id")
        issue.add_argument("--label", default="")
        issue.add_argument("--json", action="store_true")
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("project_id")
        revoke.add_argument("prefix")
        listing = sub.add_parser("list", help="list keys (prefixes only)")
        listing.add_argument("project_id")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(public_id=options["project_id"]).first()
        if project is None:
            raise CommandError(f"no project with id {options['project_id']!r}")
        if options["action"] == "issue":
            api_key, raw_key = api_key_issue(project=project, label=options["label"])
            if options["json"]:
                self.stdout.write(
                    json.dumps({"project_id": project.public_id, "project_key": raw_key})
                )
            else:
                self.stdout.write(f"Project key: {raw_key}\nStore it now: it is not shown again.")
        elif options["action"] == "revoke":
            keys = ApiKey.objects.filter(project=project, prefix=options["prefix"])
            if not keys:
                raise CommandError(f"no key with prefix {options['prefix']!r} in this project")
            for api_key in keys:
                api_key_revoke(api_key=api_key)
            self.stdout.write(f"Revoked {len(keys)} key(s).")
        else:
            for api_key in ApiKey.objects.filter(project=project).order_by("created_at"):
                state = "revoked" if api_key.revoked_at else "active"
                self.stdout.write(f"{api_key.prefix}  {state:8} {api_key.label}")
