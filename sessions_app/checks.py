"""A database check `migrate` runs first: the server must offer pgvector.

Without it the first migration failed with PostgreSQL's own traceback; a new user who
set DATABASE_URL to a server without the extension now reads what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper


@checks.register(checks.Tags.database)
def pgvector_available(
    app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None = None, **_: Any
) -> list[checks.CheckMessage]:
    missing = (pgvector_missing(connections[alias]) for alias in databases or ())
    return [error for error in missing if error is not None]


def pgvector_missing(connection: BaseDatabaseWrapper) -> checks.Error | None:
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            if cursor.fetchone() is not None:
                return None
    except DatabaseError:
        return None  # unreachable: the command that asked reports that itself
    where = connection.settings_dict
    return checks.Error(
        f"the PostgreSQL server at {where['HOST'] or 'its socket'}:{where['PORT'] or 5432} "
        f"(database {where['NAME']!r}) does not have pgvector, the 'vector' extension "
        "moss-web stores embeddings with",
        hint="install pgvector on that server "
        "(https://github.com/pgvector/pgvector#installation), or unset DATABASE_URL "
        "to use the embedded PostgreSQL that `make run` starts",
        id="moss.E001",
    )
