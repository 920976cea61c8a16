"""The connection pool checks a connection before handing it out only when it has been idle."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from moss_web.postgres import base


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    checked: list[Any] = []
    original = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        checked.append(conn)
        original(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    return checked


def test_a_connection_just_returned_is_handed_out_unchecked_and_an_idle_one_checked(
    db: None, checks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = connection.pool  # type: ignore[attr-defined]
    assert isinstance(pool, base.FailFastPool)
    conn = pool.getconn()
    pool.putconn(conn)
    checks.clear()

    pool.check_unless_recent(conn)
    assert checks == []

    monkeypatch.setattr(base, "RECENTLY_RETURNED_SECONDS", 0.0)
    pool.check_unless_recent(conn)
    assert checks == [conn]


def test_a_connection_never_returned_is_checked(db: None, checks: list[Any]) -> None:
    pool = connection.pool  # type: ignore[attr-defined]
    assert isinstance(pool, base.FailFastPool)
    conn = pool.getconn()
    try:
        pool._returned_at.pop(conn, None)
        pool.check_unless_recent(conn)
        assert checks == [conn]
    finally:
        pool.putconn(conn)
