from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from sessions_app.services.brief import turns_extract_pending


class Command(BaseCommand):
    help = (
        "Extract the handoff brief's facts and commitments of turns stored without them "
        "(written straight into the table, or by an older server); with --all, of every turn "
        "again (after the extraction rules changed). Turns stored through the API or the "
        "console are extracted when stored."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--all", action="store_true", help="extract every turn again")

    def handle(self, *args: Any, **options: Any) -> None:
        done = turns_extract_pending(again=options["all"])
        self.stdout.write(f"Extracted {done} turns.")
