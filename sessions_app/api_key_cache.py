"""A short-lived per-process cache of authenticated API keys that honours revocation at once.

Every API call authenticates its key; without a cache that is a database query
per call. Here a key found valid is remembered for MOSS_API_KEY_CACHE_SECONDS,
by the SHA-256 of the raw key, and only while this process listens for changes.

A key revoked or deleted, or a project deleted (through the models: a service,
the admin, `manage.py api_key revoke`, in any process), runs
`pg_notify(CHANNEL)` in its own transaction (signal receivers below), so every
listener empties its cache when it commits. Then, before the revoking call
returns, it tells the listeners again with a token and waits until each of them
(the `APPLICATION_NAME` connections on this database) has answered that it has
emptied its cache, at most ACK_TIMEOUT_SECONDS: the next call anywhere is
refused. While a listener is not connected its process caches nothing, so a
missed notification cannot keep a revoked key alive. Only server processes start
the listener (the ASGI lifespan); elsewhere every call reads the database, as
before. A raw UPDATE that bypasses the models tells no one; its effect waits for
the entries to expire.

Each call gets its own model instances, so no request sees another's changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from sessions_app.models import ApiKey, Project

logger = logging.getLogger(__name__)

CHANNEL = "moss_api_keys"
ACK_CHANNEL = "moss_api_keys_ack"
APPLICATION_NAME = "moss-api-key-cache"
ACK_TIMEOUT_SECONDS = 2.0
HEALTH_CHECK_SECONDS = 15.0
RECONNECT_MAX_DELAY = 5.0
_KEY_FIELDS = [f.attname for f in ApiKey._meta.concrete_fields]
_PROJECT_FIELDS = [f.attname for f in Project._meta.concrete_fields]


@dataclass(frozen=True)
class _Entry:
    key_values: tuple[Any, ...]
    project_values: tuple[Any, ...]
    expires: float


class ApiKeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a lookup that began before one must not store
        # what it read (it may predate the revocation).
        self.generation = 0
        self.listening = False
        self._thread: threading.Thread | None = None

    def get(self, key_hash: str) -> ApiKey | None:
        if not self.listening:
            return None
        entry = self._entries.get(key_hash)
        if entry is None or entry.expires < time.monotonic():
            return None
        api_key = ApiKey.from_db("default", _KEY_FIELDS, entry.key_values)
        api_key.project = Project.from_db("default", _PROJECT_FIELDS, entry.project_values)
        return api_key

    def put(self, key_hash: str, api_key: ApiKey, *, generation: int) -> None:
        ttl = settings.MOSS_API_KEY_CACHE_SECONDS
        if not self.listening or ttl <= 0:
            return
        entry = _Entry(
            key_values=tuple(getattr(api_key, name) for name in _KEY_FIELDS),
            project_values=tuple(getattr(api_key.project, name) for name in _PROJECT_FIELDS),
            expires=time.monotonic() + ttl,
        )
        with self._lock:
            if generation == self.generation and self.listening:
                self._entries[key_hash] = entry

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def start(self) -> None:
        """Listen for key changes in a thread of this process (idempotent)."""
        if settings.MOSS_API_KEY_CACHE_SECONDS <= 0:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=APPLICATION_NAME, daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        failures = 0
        delay = 0.1
        while True:
            try:
                self._listen()
            except Exception as exc:
                if self.listening:
                    failures = 0
                delay = min(0.1 * 2**failures, RECONNECT_MAX_DELAY)
                failures += 1
                logger.warning("API key cache listener: %s; reconnecting in %.1fs", exc, delay)
            finally:
                self.listening = False
                self.invalidate()
            time.sleep(delay)

    def _listen(self) -> None:
        with psycopg.connect(**_connection_params(), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            # Anything cached before LISTEN took effect may be stale.
            self.invalidate()
            self.listening = True
            while True:
                # One at a time: the connection answers only between notifications.
                received = list(conn.notifies(timeout=HEALTH_CHECK_SECONDS, stop_after=1))
                if not received:
                    conn.execute("SELECT 1")
                    continue
                self.invalidate()
                for token in {n.payload for n in received if n.payload}:
                    conn.execute("SELECT pg_notify(%s, %s)", [ACK_CHANNEL, token])


api_key_cache = ApiKeyCache()


def api_key_cache_start() -> None:
    api_key_cache.start()


def _connection_params() -> dict[str, Any]:
    """Django's own connection settings, for a psycopg connection of our own."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["application_name"] = APPLICATION_NAME
    return params


def keys_forget_everywhere() -> None:
    """Empty this process's cache and every listening process's, and wait until each
    has said so (at most ACK_TIMEOUT_SECONDS)."""
    api_key_cache.invalidate()
    token = uuid.uuid4().hex
    params = {**_connection_params(), "application_name": "moss-api-key-revoker"}
    try:
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {ACK_CHANNEL}")
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                [APPLICATION_NAME],
            ).fetchone()
            listeners = row[0] if row else 0
            conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, token])
            acked = 0
            deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
            while acked < listeners and time.monotonic() < deadline:
                remaining = deadline - time.monotonic()
                for notify in conn.notifies(timeout=remaining, stop_after=1):
                    acked += notify.payload == token
    except psycopg.Error as exc:
        logger.warning("could not confirm that every server forgot a revoked key: %s", exc)
        return
    if acked < listeners:
        logger.warning(
            "%d of %d servers confirmed forgetting a revoked key within %.0f s",
            acked,
            listeners,
            ACK_TIMEOUT_SECONDS,
        )


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
@receiver(post_delete, sender=Project)
def _key_changed(created: bool = False, **kwargs: Any) -> None:
    if created:
        return  # a new key is in no cache
    # In the change's own transaction, so listeners forget when it commits even if this
    # process stops right after; then, once committed, again and waiting for answers.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    transaction.on_commit(keys_forget_everywhere)
