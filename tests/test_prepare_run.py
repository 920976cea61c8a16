"""`make run`'s first step: no public HOST on the built-in SECRET_KEY, and the demo can be off."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sessions_app.models import Project

RANDOM_KEY = "x5Hq0c9Zr2k7Vw3Nn8Lp1Ys6Dt4Fb0Gj5Mh2Ke9Ra3Uc7Wd1Qe6Tf8Pg4Sh0Ji2Ok"


def run(*args: str) -> str:
    out = StringIO()
    call_command("prepare_run", *args, stdout=out)
    return out.getvalue()


def test_the_fallback_secret_key_is_marked_insecure(settings: Any) -> None:
    assert settings.SECRET_KEY.startswith("django-insecure-")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "moss.example.com", "::"])
def test_a_public_host_without_secret_key_is_refused(db: None, host: str) -> None:
    with pytest.raises(CommandError, match=f"refusing to serve on HOST={host} without SECRET_KEY"):
        run("--host", host)
    assert not Project.objects.exists()  # refused before seeding anything


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_loopback_hosts_start_on_the_development_key(db: None, host: str) -> None:
    out = run("--host", host, "--demo", "false")
    assert "moss-web is starting" in out


def test_a_public_host_starts_with_a_secret_key(db: None, settings: Any) -> None:
    settings.SECRET_KEY = RANDOM_KEY
    out = run("--host", "0.0.0.0", "--port", "9000", "--demo", "false")
    assert "http://0.0.0.0:9000/console/" in out


def test_a_public_host_with_debug_on_is_refused(db: None, settings: Any) -> None:
    """Debug pages would show the database and Redis URLs, passwords included."""
    settings.SECRET_KEY = RANDOM_KEY
    settings.DEBUG = True
    with pytest.raises(CommandError, match=r"refusing to serve on HOST=0\.0\.0\.0 with DEBUG"):
        run("--host", "0.0.0.0", "--demo", "false")
    assert "moss-web is starting" in run("--host", "127.0.0.1", "--demo", "false")


def test_demo_false_seeds_nothing(db: None, settings: Any, tmp_path: Any) -> None:
    settings.DATA_DIR = tmp_path
    out = run("--demo", "false")
    assert "Demo:          off" in out
    assert not Project.objects.exists()
    assert not list(tmp_path.iterdir())


def test_the_demo_switch_rejects_a_typo() -> None:
    with pytest.raises(CommandError, match="DEMO must be true or false, got 'flase'"):
        run("--demo", "flase")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "70000"), "PORT must be a number from 1 to 65535, got '70000'"),
        (("--port", "abc"), "PORT must be a number from 1 to 65535, got 'abc'"),
        (("--workers", "0"), "WORKERS must be a number of 1 or more, got '0'"),
    ],
)
def test_a_port_or_worker_count_that_cannot_work_stops_before_anything(
    args: tuple[str, ...], message: str
) -> None:
    """uvicorn took PORT=70000 and listened on 4464 while the banner said 70000."""
    with pytest.raises(CommandError, match=message):
        run(*args, "--demo", "false")


def test_several_workers_without_redis_are_warned_about(db: None, settings: Any) -> None:
    settings.REDIS_URL = ""
    err = StringIO()
    call_command("prepare_run", "--workers", "2", "--demo", "false", stdout=StringIO(), stderr=err)
    assert "WORKERS=2 without REDIS_URL" in err.getvalue()
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    err = StringIO()
    call_command("prepare_run", "--workers", "2", "--demo", "false", stdout=StringIO(), stderr=err)
    assert err.getvalue() == ""
