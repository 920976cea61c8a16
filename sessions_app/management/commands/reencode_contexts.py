from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import embeddings
from sessions_app.models import Project
from sessions_app.services.context_reencode import contexts_reencode


class Command(BaseCommand):
    help = (
        "Compute every stored context vector again with the current model and windows "
        "(after an upgrade that changed them; stored ones otherwise keep ranking as they "
        "are). Sessions stay in use meanwhile; an interrupted run goes on with --after."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="only this project's sessions (its public id)")
        parser.add_argument(
            "--after", type=int, default=0, help="start after this session id (printed as it goes)"
        )
        parser.add_argument(
            "--plain",
            action="store_true",
            help="each turn's own vector too, by the encoder stored text now gets",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = None
        if options["project"]:
            project = Project.objects.filter(public_id=options["project"]).first()
            if project is None:
                raise CommandError(f"no project with id {options['project']!r}")
        done = 0
        try:
            embeddings.model_load()
            sessions = contexts_reencode(
                project=project, after_session=options["after"], plain=options["plain"]
            )
            for session_id in sessions:
                done += 1
                self.stdout.write(f"session {session_id} done")
        except embeddings.ModelUnavailable as exc:
            raise CommandError(
                f"the embedding model is unavailable: {exc} ({done} sessions done; "
                "run again with --after the last id printed)"
            ) from exc
        kinds = "Context and plain vectors" if options["plain"] else "Context vectors"
        self.stdout.write(f"{kinds} computed again; sessions done: {done}.")
