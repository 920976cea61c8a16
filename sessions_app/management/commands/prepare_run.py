"""What `make run` does before serving: refuse an unsafe start, seed the demo, print the banner."""

import argparse
import ipaddress
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port(value: str) -> int:
    # uvicorn takes PORT=70000 and listens on 70000 - 65536 while saying 70000.
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
        raise argparse.ArgumentTypeError(f"PORT must be a number from 1 to 65535, got {value!r}")
    return int(value)


def workers(value: str) -> int:
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise argparse.ArgumentTypeError(f"WORKERS must be a number of 1 or more, got {value!r}")
    return int(value)


def switch(value: str) -> bool:
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"DEMO must be true or false, got {value!r}")


class Command(BaseCommand):
    help = (
        "Check that the server may start on HOST (a non-loopback HOST needs SECRET_KEY), "
        "seed the demo unless --demo false, and print where everything is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=port, default=8000, help="1-65535")
        parser.add_argument("--workers", type=workers, default=1, help="server processes")
        parser.add_argument("--demo", type=switch, default=True, help="true (default) or false")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"]
        if not is_loopback(host) and settings.SECRET_KEY.startswith(
            settings.INSECURE_SECRET_KEY_PREFIX
        ):
            raise CommandError(
                f"refusing to serve on HOST={host} without SECRET_KEY: the built-in "
                "development key is public, so anyone who can reach this address could forge "
                "sign-in sessions. Set SECRET_KEY to a long random value, for example\n"
                "  export SECRET_KEY=\"$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(50))')\"\n"
                "or serve on 127.0.0.1 (the default HOST)."
            )
        if not is_loopback(host) and settings.DEBUG:
            raise CommandError(
                f"refusing to serve on HOST={host} with DEBUG on: Django's debug pages show "
                "settings and tracebacks (the database's and Redis's addresses among them) "
                "to whoever makes a request fail. Unset DEBUG, or serve on 127.0.0.1."
            )
        if options["workers"] > 1 and not settings.REDIS_URL:
            self.stderr.write(
                f"warning: WORKERS={options['workers']} without REDIS_URL: each server process "
                "has its own live events and rate limits, so a console page sees only the "
                "changes made through its own process. Set REDIS_URL (README, Configuration).\n"
            )
        shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        base = f"http://{shown_host}:{options['port']}"
        lines = ["", "moss-web is starting", f"  Console:       {base}/console/"]
        if settings.MOSS_API_DOCS:
            lines.append(f"  API docs:      {base}/api/v1/docs")
        lines += [f"  Admin:         {base}/admin/", f"  Health:        {base}/healthz"]
        self.stdout.write("\n".join(lines))
        if options["demo"]:
            call_command("seed_demo", stdout=self.stdout)
        else:
            self.stdout.write(
                "  Demo:          off (DEMO=false). Create a project with "
                "`manage.py create_project NAME` and people with `manage.py createsuperuser`.\n"
            )
