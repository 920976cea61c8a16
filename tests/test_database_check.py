"""`migrate` first checks that the database server offers pgvector (sessions_app/checks.py)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.db import connection, connections

from sessions_app.checks import pgvector_available, pgvector_missing
from tests.conftest import need

# The machine's own PostgreSQL (README: a DATABASE_URL a user may try), without pgvector.
PLAIN_POSTGRES = {"HOST": "127.0.0.1", "PORT": "5432", "NAME": "postgres", "USER": "postgres"}


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.django_db
def test_a_server_with_pgvector_passes() -> None:
    assert pgvector_missing(connection) is None
    assert pgvector_available(None, databases=["default"]) == []


def test_a_server_without_pgvector_is_named_with_what_to_do(django_db_blocker: Any) -> None:
    """Another server than the test database: its own connection, read-only queries."""
    need(_listening("127.0.0.1", 5432), "no PostgreSQL on 127.0.0.1:5432 to check against")
    plain = connections.create_connection("default")
    # Without the pool: the pool is the default alias's, and would hand out its connections.
    options = {k: v for k, v in plain.settings_dict["OPTIONS"].items() if k != "pool"}
    plain.settings_dict = {
        **plain.settings_dict,
        **PLAIN_POSTGRES,
        "PASSWORD": "",
        "OPTIONS": options,
    }
    with django_db_blocker.unblock():
        try:
            with plain.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                if cursor.fetchone() is not None:
                    pytest.skip("the PostgreSQL on 127.0.0.1:5432 has pgvector")
            error = pgvector_missing(plain)
        finally:
            plain.close()
    assert error is not None and error.id == "moss.E001"
    assert "127.0.0.1:5432 (database 'postgres') does not have pgvector" in error.msg
    assert "unset DATABASE_URL" in (error.hint or "")
