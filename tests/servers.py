"""Real server processes for end-to-end tests: uvicorn serving the app against the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database the test run is using (the test database, once set up)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={quote(host)}"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgresql://{auth}@{host or 'localhost'}{port}/{s['NAME']}"


def python_run(code: str, *, timeout: float) -> str:
    """`code` run by a fresh Python process of this checkout with the project's settings;
    the last line it printed. Fails the test with its stderr when it fails."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "moss_web.settings"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(
    *, env: dict[str, str] | None = None, timeout: float = 90, port: int | None = None
) -> Iterator[str]:
    """Start `uvicorn moss_web.asgi:application` on `port` (default: a free one); yield
    its base URL."""
    port = port or free_port()
    process_env = {**os.environ, "DATABASE_URL": test_database_url(), **(env or {})}
    if env is not None and "REDIS_URL" not in env:
        process_env.pop("REDIS_URL", None)
    log = open(ROOT / f".moss/server-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "moss_web.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited; see {log.name}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {timeout}s; see {log.name}")
            time.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def other_database_sessions_end() -> None:
    """End what server processes left connected, so the test database can be dropped:
    PostgreSQL notices a closed client connection a moment after the process exits."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


WORKER_APP_NAME = "moss-test-webhook-worker"


@contextmanager
def worker_process(
    *, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `manage.py deliver_webhooks` against the test database until the block ends;
    then stop it with SIGTERM and check that it exited cleanly."""
    process_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        # Tag its connections, to wait for them to end afterwards.
        "PGAPPNAME": WORKER_APP_NAME,
        **(env or {}),
    }
    log_path = ROOT / f".moss/webhook-worker-{os.getpid()}-{time.monotonic_ns()}.log"
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks"],
        cwd=ROOT,
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout
        while "listening for events" not in log_path.read_text():
            if process.poll() is not None:
                raise RuntimeError(f"worker exited; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {timeout}s; see {log_path}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            returncode = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        log.close()
        worker_connections_wait()
    assert returncode == 0, f"worker did not stop cleanly on SIGTERM ({returncode}); see {log_path}"
    log_path.unlink()  # kept only when something went wrong


def worker_connections_wait(timeout: float = 10) -> None:
    """Until the database has let go of the worker's connections (it notices a moment
    after the process exits), so the test's flush and the final drop do not wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [WORKER_APP_NAME],
            )
            row = cursor.fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.05)
