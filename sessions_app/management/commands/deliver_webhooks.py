from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.webhooks.worker import worker_run


class Command(BaseCommand):
    help = (
        "Deliver webhooks from the event log until SIGTERM or SIGINT; also prunes the "
        "event log about hourly and stores the past days dashboards lack. "
        "`make run` starts one; run more for more throughput."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="endpoints delivered to at once "
            f"(default MOSS_WEBHOOK_WORKER_THREADS, {settings.MOSS_WEBHOOK_WORKER_THREADS})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["threads"] is not None and options["threads"] < 1:
            raise CommandError("--threads must be 1 or more")
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        def ready() -> None:
            self.stdout.write("deliver_webhooks: listening for events")
            self.stdout.flush()

        worker_run(stop=stop, threads=options["threads"], on_ready=ready)
        self.stdout.write("deliver_webhooks: stopped")
