from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.errors import InvalidInput
from sessions_app.services.event_log import events_prune


class Command(BaseCommand):
    help = "Delete events older than the retention period (MOSS_EVENT_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days instead of {settings.MOSS_EVENT_RETENTION_DAYS}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            deleted = events_prune(older_than_days=options["days"])
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"deleted {deleted} events")
