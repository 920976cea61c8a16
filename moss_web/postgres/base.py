"""Django's PostgreSQL backend with a connection pool that fails fast while the database is down.

A request waiting for a pooled connection cannot tell a busy pool (every
connection in use: wait, one is coming back) from a dead database (none will
come). This pool can: it watches its own connection attempts. While they fail,
a request gives up after DB_UNAVAILABLE_TIMEOUT and gets a 503; while they
succeed, it waits up to DB_POOL_TIMEOUT, as a busy server should.

A connection is checked (a round trip) before it is handed out only when it has
sat in the pool for a while: one back from a request a moment ago is handed out
as it is, which spares a busy server a round trip per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool, PoolTimeout

# A connection returned to the pool less than this long ago is not checked again: if the
# database dropped it in that moment, its next request fails with a 503 (retryable).
RECENTLY_RETURNED_SECONDS = 1.0


class FailFastPool(ConnectionPool):
    def __init__(
        self, *args: Any, unavailable_timeout: float, check_idle: bool, **kwargs: Any
    ) -> None:
        self._returned_at: WeakKeyDictionary[psycopg.Connection[Any], float] = WeakKeyDictionary()
        if check_idle:
            kwargs["check"] = self.check_unless_recent
        super().__init__(*args, **kwargs)
        self.unavailable_timeout = unavailable_timeout
        # Whether the last attempt to open a connection failed.
        self.connect_failing = False

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        self._returned_at[conn] = time.monotonic()
        super().putconn(conn)

    def check_unless_recent(self, conn: psycopg.Connection[Any]) -> None:
        returned = self._returned_at.get(conn)
        if returned is None or time.monotonic() - returned > RECENTLY_RETURNED_SECONDS:
            ConnectionPool.check_connection(conn)

    def _connect(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        # Every connection the pool opens goes through here (psycopg_pool 3.x);
        # test_outage_database fails if an upgrade changes that.
        try:
            connection = super()._connect(timeout)
        except psycopg.Error:
            self.connect_failing = True
            raise
        self.connect_failing = False
        return connection

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        total = self.timeout if timeout is None else timeout
        first = min(self.unavailable_timeout, total)
        try:
            return super().getconn(first)
        except PoolTimeout:
            if self.connect_failing or total <= first:
                raise
        # Busy, not down: keep waiting for a connection to come back.
        return super().getconn(total - first)


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's, undeclared in its type stubs.
    _connection_pools: ClassVar[dict[str, FailFastPool]]
    _configure_connection: Callable[[psycopg.Connection[Any]], None]

    @property
    def pool(self) -> FailFastPool | None:
        # As Django's, with FailFastPool (Django 5.2, django/db/backends/postgresql/base.py).
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            options = {} if pool_options is True else dict(pool_options)
            options.setdefault("unavailable_timeout", 1.0)
            connect_kwargs = self.get_connection_params()
            # Ensure we run in autocommit, Django properly sets it later on.
            connect_kwargs["autocommit"] = True
            enable_checks = self.settings_dict["CONN_HEALTH_CHECKS"]
            pool = FailFastPool(
                kwargs=connect_kwargs,
                open=False,  # Do not open the pool during startup.
                configure=self._configure_connection,
                check_idle=enable_checks,
                **options,
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
