"""Input rules shared by the API, the console and the commands. Each raises InvalidInput."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from django.conf import settings

from sessions_app.errors import InvalidInput
from sessions_app.models import AuditEvent

# Also declared in the OpenAPI schema, where `$` means the end of the string;
# Python's `$` also matches before a final newline, hence fullmatch below.
SESSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$"
SESSION_NAME_RE = re.compile(SESSION_NAME_PATTERN)
# A project's public id as the models make it ("proj_" and hex), with room for others.
PROJECT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
PROJECT_ID_RE = re.compile(PROJECT_ID_PATTERN)
DOC_ID_MAX = 128
METADATA_MAX_KEYS = 50
METADATA_VALUE_MAX = 1000
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A turn's channel is also recorded on its audit event.
METADATA_CHANNEL_MAX: int = AuditEvent._meta.get_field("channel").max_length  # type: ignore[assignment]


def text_is_storable(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor lone surrogates (UTF-8 cannot encode them)."""
    return "\x00" not in text and text_encodes(text)


def text_encodes(text: str) -> bool:
    """Whether UTF-8 can encode it: a lone surrogate ("\\ud800" in JSON) it cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def session_name_is_valid(name: str) -> bool:
    return SESSION_NAME_RE.fullmatch(name) is not None


def project_id_is_valid(project_id: str) -> bool:
    return PROJECT_ID_RE.fullmatch(project_id) is not None


def session_name_check(name: str) -> None:
    if not session_name_is_valid(name):
        raise InvalidInput(
            "invalid session name: use 1-128 letters, digits and . _ : @ + -, "
            "starting with a letter or digit"
        )


def text_check(text: str, *, where: str) -> None:
    if not text or not text.strip():
        raise InvalidInput(f"{where}: text must not be empty")
    if "\x00" in text:
        raise InvalidInput(f"{where}: text must not contain NUL characters")
    if len(text) > settings.MOSS_MAX_TEXT_CHARS:
        raise InvalidInput(
            f"{where}: text is {len(text)} characters, the limit is {settings.MOSS_MAX_TEXT_CHARS}"
        )


def doc_id_check(doc_id: str, *, where: str) -> None:
    if not doc_id or len(doc_id) > DOC_ID_MAX or "\x00" in doc_id:
        raise InvalidInput(f"{where}: id must be 1-{DOC_ID_MAX} characters without NUL")


def metadata_check(metadata: dict[str, Any], *, where: str) -> None:
    if len(metadata) > METADATA_MAX_KEYS:
        raise InvalidInput(f"{where}: metadata has more than {METADATA_MAX_KEYS} keys")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or "\x00" in key or len(key) > METADATA_VALUE_MAX:
            raise InvalidInput(
                f"{where}: metadata keys must be non-empty strings of at most "
                f"{METADATA_VALUE_MAX} characters without NUL"
            )
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: metadata value for {key!r} must be a string")
        if "\x00" in value or len(value) > METADATA_VALUE_MAX:
            raise InvalidInput(
                f"{where}: metadata value for {key!r} must be at most "
                f"{METADATA_VALUE_MAX} characters without NUL"
            )
    if len(metadata.get("channel", "")) > METADATA_CHANNEL_MAX:
        raise InvalidInput(
            f"{where}: metadata channel must be at most {METADATA_CHANNEL_MAX} characters"
        )


def embedding_check(embedding: list[float], *, where: str) -> None:
    if len(embedding) != settings.EMBEDDING_DIMENSIONS:
        raise InvalidInput(
            f"{where}: embedding has {len(embedding)} dimensions, "
            f"expected {settings.EMBEDDING_DIMENSIONS}"
        )
    if not all(math.isfinite(x) and abs(x) <= FLOAT32_MAX for x in embedding):
        raise InvalidInput(
            f"{where}: embedding values must be finite numbers within ±{FLOAT32_MAX:.4g} "
            "(they are stored as 32-bit floats)"
        )
    # Values too small for a 32-bit float become 0: check what will be stored.
    if not np.asarray(embedding, dtype=np.float32).any():
        raise InvalidInput(f"{where}: embedding must not be all zeros")


def unpaired_surrogate_at(data: Any) -> str | None:
    """Where the first string (or key) holding an unpaired surrogate is, in document
    order ("docs.0.text"; "body" for the whole); None when there is none."""
    pending: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str) and not text_encodes(value):
            return ".".join(path) or "body"
        if isinstance(value, dict):
            for key in value:
                if not text_encodes(key):
                    return ".".join((*path, _printable(key), "[key]"))
            pending.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
