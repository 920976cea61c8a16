import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sessions_app.services.projects import project_create


class Command(BaseCommand):
    help = "Create a project and print its id and a new key (the key is shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args: Any, **options: Any) -> None:
        project, raw_key = project_create(name=options["name"])
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"project_id": project.public_id, "project_key": raw_key, "name": project.name}
                )
            )
            return
        self.stdout.write(f"Project:     {project.name}")
        self.stdout.write(f"Project id:  {project.public_id}")
        self.stdout.write(f"Project key: {raw_key}")
        self.stdout.write("Store the key now: it is not shown again.")
