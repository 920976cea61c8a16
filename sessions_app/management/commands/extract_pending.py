from typing import Any

from django.core.management.base import BaseCommand

from sessions_app.services.brief import turns_extract_pending


class Command(BaseCommand):
    help = (
        "Extract the handoff brief's facts and commitments of turns stored without them "
        "(written straight into the table, or by an older server). Turns stored through "
        "the API or the console are extracted when stored."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Extracted {turns_extract_pending()} turns.")
