"""`manage.py check --deploy` is clean with the README's production environment, run as written,
and flags the default one (the development SECRET_KEY first of all)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.servers import ROOT

# Settings the production block sets; the default run must not inherit them from this shell.
SETTINGS = (
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
)


def production_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Production\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's Production section has no sh block"
    return match.group(1)


def deploy_check(prelude: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    # Any URL: the check reads settings and never connects (and no embedded server starts).
    env["DATABASE_URL"] = "postgresql://moss@127.0.0.1:1/moss"
    script = f'{prelude}\nexec "{sys.executable}" manage.py check --deploy --fail-level WARNING'
    return subprocess.run(
        ["bash", "-euc", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_readme_production_environment_passes_check_deploy() -> None:
    result = deploy_check(production_block())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_default_environment_is_flagged() -> None:
    result = deploy_check("")
    assert result.returncode != 0
    for check in ("W009", "W004", "W008", "W012", "W016"):  # key, HSTS, redirect, cookies
        assert f"security.{check}" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MOSS_WEBHOOK_POLL_SECONDS", "0", "must be a number above 0"),  # an idle worker spun
        ("MOSS_WEBHOOK_WORKER_THREADS", "0", "must be at least 1"),  # delivered nothing
        ("MOSS_EMBED_RETRY_SECONDS", "-1", "must be a number above 0"),  # killed its thread
        ("MOSS_WRITE_SLOTS", "-1", "must be at least 0"),  # every add_docs a 500
        ("DB_POOL_MAX", "0", "must be at least 1"),
        ("REDIS_URL", "localhost:6379", "must start with redis://"),  # every API call a 500
    ],
)
def test_a_setting_out_of_range_stops_the_start_naming_it(
    variable: str, value: str, message: str
) -> None:
    result = deploy_check(f"export {variable}={value}")
    assert result.returncode != 0
    assert f"{variable} {message}" in result.stderr
