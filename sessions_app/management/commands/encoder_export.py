from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import embeddings
from sessions_app.onnx_encoder import ONNX_FILE, export_dir


class Command(BaseCommand):
    help = (
        "Export the embedding model to ONNX for the onnx backend (make setup runs this). "
        "Does nothing when the export of the current model files exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="export again even if it exists")

    def handle(self, *args: Any, **options: Any) -> None:
        model_dir = embeddings.model_path()
        if not (model_dir / "config.json").is_file():
            raise CommandError(f"no model files in {model_dir}")
        if (export_dir(model_dir) / ONNX_FILE).is_file() and not options["force"]:
            # The usual case: no torch import, so `make setup` stays quick.
            self.stdout.write(f"ONNX export up to date in {export_dir(model_dir)}")
            return
        from sessions_app.onnx_export import encoder_export

        target, _ = encoder_export(model_dir=model_dir, force=options["force"])
        self.stdout.write(f"Exported {model_dir} to {target / ONNX_FILE}")
