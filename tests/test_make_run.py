"""`make run` itself, as a new user types it: the refusal on a public HOST, and the demo logins
it prints signing in to the server it starts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from sessions_app.models import Project
from tests import servers
from tests.conftest import need

LOGIN_LINE = re.compile(r"^\s+(ana|ben|sam|admin)\s+(agent|supervisor|admin)\s+(\S+)\s*$", re.M)


@pytest.fixture(autouse=True)
def make_available() -> None:
    need(shutil.which("make") is not None, "no make on PATH")


def make_env(data_dir: Path) -> dict[str, str]:
    """This shell's environment less anything that would change `make run`'s defaults."""
    dropped = {"SECRET_KEY", "HOST", "PORT", "DEMO", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    # The test database (already migrated), and a data folder of the test's own.
    env.update(DATABASE_URL=servers.test_database_url(), MOSS_DATA_DIR=str(data_dir))
    # The encoder export `make setup` already made, rather than a minute's export again.
    env.update(MOSS_ENCODER_DIR=str(settings.MOSS_ENCODER_DIR))
    return env


def test_make_run_refuses_a_public_host_without_secret_key(
    transactional_db: None, tmp_path: Path
) -> None:
    result = subprocess.run(
        ["make", "run", "HOST=0.0.0.0", f"PORT={servers.free_port()}"],
        cwd=servers.ROOT,
        env=make_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "refusing to serve on HOST=0.0.0.0 without SECRET_KEY" in result.stderr
    assert "uvicorn" not in result.stdout  # make stopped before the server
    assert not Project.objects.exists()


def test_make_run_prints_demo_logins_that_sign_in(transactional_db: None, tmp_path: Path) -> None:
    port = servers.free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=servers.ROOT,
        env=make_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and uvicorn in a group of their own, ended together
    )
    stdout = process.stdout
    assert stdout is not None
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(stdout.readline, "")))
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not _serving(base_url):
            assert process.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.5)
        logins = {name: password for name, _, password in LOGIN_LINE.findall("".join(output))}
        assert set(logins) == {"ana", "ben", "sam", "admin"}, "".join(output)
        assert "moss-demo-2026" not in "".join(output)

        with httpx.Client(base_url=base_url, timeout=30) as browser:
            browser.get("/accounts/login/")
            signed_in = browser.post(
                "/accounts/login/?next=/admin/",
                data={
                    "username": "admin",
                    "password": logins["admin"],
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
            )
            assert signed_in.status_code == 302 and signed_in.headers["location"] == "/admin/"
            assert browser.get("/admin/").status_code == 200
        # A SIGTERM to make alone (a service manager's stop) ends the server and its worker.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert not _serving(base_url)
        assert "deliver_webhooks: stopped" in "".join(output) or not _group_alive(process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        reader.join(timeout=10)
    assert not _group_alive(process.pid), "a process of make run outlived it"


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _serving(base_url: str) -> bool:
    # The sign-in page, not /healthz: that waits for the model, which this test does not need.
    try:
        return httpx.get(f"{base_url}/accounts/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_demo_false_reaches_the_demo_switch(tmp_path: Path) -> None:
    # A dry run (make -n) prints the commands without running them.
    result = subprocess.run(
        ["make", "-n", "run", "DEMO=false"],
        cwd=servers.ROOT,
        env=make_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        "manage.py prepare_run --host 127.0.0.1 --port 8000 --workers 1 --demo false"
        in result.stdout
    )
