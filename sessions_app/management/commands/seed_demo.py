"""Idempotent demo data, and the demo part of the banner `make run` prints before serving."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from sessions_app.services.demo import KEY_FILE, LOGINS_FILE, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo project, people (with generated passwords) and conversations "
        "(safe to run again: it changes nothing the second time)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = settings.DATA_DIR
        seeded = demo_seed(data_dir=data_dir)
        for name in seeded.conversations_created:
            self.stdout.write(f"  demo conversation {name} created")
        width = max(len(login.username) for login in seeded.logins)
        lines = [
            f"  Demo project:  {seeded.project.public_id}",
            f"  Demo key:      {seeded.raw_key}",
            f"  Demo logins (kept in {data_dir / LOGINS_FILE}, key in {KEY_FILE}; mode 0600):",
        ]
        for login in seeded.logins:
            password = login.password or "(account existed before the demo; password unchanged)"
            lines.append(f"    {login.username:<{width}}  {login.role:<10}  {password}")
        self.stdout.write("\n".join([*lines, ""]))
