"""/healthz: database and model readiness, answered within a second whatever is down."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, JsonResponse

from sessions_app import embeddings

# The database check gets this long; a database that has not answered by then
# is reported down (its check finishes in the background, bounded by the pool's timeouts).
DATABASE_CHECK_SECONDS = 0.5


def _database_check() -> dict[str, object]:
    # A connection of its own (from the same pool), independent of the request's.
    database = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with database.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        return {"ok": row is not None, "pgvector": row[0] if row else None}
    except DatabaseError as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    finally:
        database.close()


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 "ok"; 200 "degraded" while the model is unavailable (turns are stored and found
    by keyword); 503 "starting" until the model has loaded once; 503 "unavailable" while
    the database is down."""
    try:
        database = await asyncio.wait_for(
            sync_to_async(_database_check, thread_sensitive=False)(), DATABASE_CHECK_SECONDS
        )
    except TimeoutError:
        database = {"ok": False, "error": "timeout"}
    status = embeddings.model_status()
    model: dict[str, object] = {
        "ok": status.state == "ready",
        "id": embeddings.model_id(),
        "state": status.state,
    }
    if status.error:
        model["error"] = status.error
    if not database["ok"]:
        overall, code = "unavailable", 503
    elif status.state == "loading":
        overall, code = "starting", 503
    elif status.state == "unavailable":
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, "database": database, "model": model}, status=code)
