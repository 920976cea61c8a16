from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from sessions_app.api_key_cache import api_key_cache
from sessions_app.models import ApiKey, Project

KEY_PREFIX = "moss_"


def _key_hash(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough; no stretching needed.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_issue(*, project: Project, label: str = "") -> tuple[ApiKey, str]:
    """A new key for the project. The raw key is returned once and never stored."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        project=project,
        label=label,
        prefix=raw_key[: len(KEY_PREFIX) + 6],
        key_hash=_key_hash(raw_key),
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, project_public_id: str, raw_key: str) -> ApiKey | None:
    """The active key, with its project, if it belongs to that project. Served from the
    per-process cache (api_key_cache.py) when this process listens for revocations."""
    if not project_public_id or not raw_key:
        return None
    key_hash = _key_hash(raw_key)
    api_key = api_key_cache.get(key_hash)
    generation = api_key_cache.generation
    read = api_key is None
    if read:
        api_key = (
            ApiKey.objects.select_related("project")
            .filter(key_hash=key_hash, revoked_at__isnull=True)
            .first()
        )
    # Bytes: compare_digest refuses str with non-ASCII characters, which a header can carry.
    expected = api_key.project.public_id.encode() if api_key else b""
    if api_key is None or not hmac.compare_digest(
        expected, project_public_id.encode("utf-8", "surrogatepass")
    ):
        return None  # a rejected request writes nothing, last_used_at included
    if read:
        _last_used_touch(api_key)
        api_key_cache.put(key_hash, api_key, generation=generation)
    return api_key


def _last_used_touch(api_key: ApiKey) -> None:
    # At most once a minute, not on every request; a cached key is touched again when
    # its entry expires, so last_used_at lags by at most the cache's lifetime.
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


@transaction.atomic
def project_create(*, name: str, key_label: str = "default") -> tuple[Project, str]:
    project = Project.objects.create(name=name)
    _, raw_key = api_key_issue(project=project, label=key_label)
    return project, raw_key
