from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from sessions_app import embeddings


def healthz(request: HttpRequest) -> JsonResponse:
    """Database and model readiness: 200 when both are ready, 503 otherwise."""
    database: dict[str, object] = {"ok": False}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        database = {"ok": row is not None, "pgvector": row[0] if row else None}
    except DatabaseError as exc:
        database = {"ok": False, "error": exc.__class__.__name__}
    model = {"ok": embeddings.model_is_loaded(), "id": embeddings.model_id()}
    ready = bool(database["ok"] and model["ok"])
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "database": database, "model": model},
        status=200 if ready else 503,
    )
