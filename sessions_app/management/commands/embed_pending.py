from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sessions_app import embeddings
from sessions_app.services.backfill import turns_embed_pending, turns_pending_count


class Command(BaseCommand):
    help = (
        "Embed the turns stored while the embedding model was unavailable. "
        "Server processes do this by themselves once the model is back."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            embeddings.model_load()
            embedded = turns_embed_pending()
        except embeddings.ModelUnavailable as exc:
            raise CommandError(f"the embedding model is unavailable: {exc}") from exc
        self.stdout.write(f"Embedded {embedded} pending turns; {turns_pending_count()} pending.")
