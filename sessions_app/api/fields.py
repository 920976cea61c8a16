"""Field types of API v1: each declares its real limit in the OpenAPI schema and enforces it.

Limits of stored columns come from the models, so the schema and the database
cannot disagree. Strings that reach PostgreSQL must not contain NUL (text
columns cannot store it): `NoNul` rejects it with a clear message and declares
the equivalent `pattern`.
"""

from __future__ import annotations

from typing import Annotated

from django.conf import settings
from django.db.models import Model
from ninja import Field, Header
from pydantic import AfterValidator, WithJsonSchema

from sessions_app.models import AuditEvent, Handoff, Session, Turn
from sessions_app.validation import (
    FLOAT32_MAX,
    METADATA_CHANNEL_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    SESSION_NAME_PATTERN,
    session_name_is_valid,
)

NO_NUL_PATTERN = r"^[^\x00]*$"
CURSOR_PATTERN = r"^[0-9]{1,18}$"


def max_length_of(model: type[Model], field: str) -> int:
    length = model._meta.get_field(field).max_length  # type: ignore[union-attr]
    assert length is not None, f"{model.__name__}.{field} has no max_length"
    return int(length)


CHANNEL_MAX = max_length_of(AuditEvent, "channel")
DEVICE_MAX = max_length_of(AuditEvent, "device")
AGENT_MAX = max_length_of(AuditEvent, "actor_label")
TARGET_MAX = max_length_of(Handoff, "to_target")
SESSION_NAME_MAX = max_length_of(Session, "name")
DOC_ID_MAX = max_length_of(Turn, "doc_id")
MODEL_ID_MAX = max_length_of(Session, "model_id")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _session_name(value: str) -> str:
    if not session_name_is_valid(value):
        raise ValueError(
            f"invalid session name: use 1-{SESSION_NAME_MAX} letters, digits and . _ : @ + -, "
            "starting with a letter or digit"
        )
    return value


def _cursor(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValueError("must be a value returned as next_cursor")
    return value


def _metadata_channel(value: dict[str, str]) -> dict[str, str]:
    # The channel of a turn is also recorded on its audit event.
    if len(value.get("channel", "")) > METADATA_CHANNEL_MAX:
        raise ValueError(f"channel must be at most {METADATA_CHANNEL_MAX} characters")
    return value


# Length limits go before the NUL check so pydantic reports them as string lengths.
_NO_NUL = AfterValidator(_no_nul)
_NO_NUL_SCHEMA = Field(json_schema_extra={"pattern": NO_NUL_PATTERN})

NoNul = Annotated[str, _NO_NUL, _NO_NUL_SCHEMA]
SessionName = Annotated[
    str,
    AfterValidator(_session_name),
    Field(
        description="The shared key: conversation, customer or ticket id",
        json_schema_extra={
            "pattern": SESSION_NAME_PATTERN,
            "minLength": 1,
            "maxLength": SESSION_NAME_MAX,
        },
    ),
]
NamePrefix = Annotated[str, Field(max_length=SESSION_NAME_MAX), _NO_NUL, _NO_NUL_SCHEMA]
Cursor = Annotated[
    str,
    AfterValidator(_cursor),
    Field(
        description="A next_cursor from the previous page",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
ModelId = Annotated[str, Field(max_length=MODEL_ID_MAX), _NO_NUL, _NO_NUL_SCHEMA]
Channel = Annotated[
    str,
    Field(max_length=CHANNEL_MAX, description="e.g. voice, chat, email"),
    _NO_NUL,
    _NO_NUL_SCHEMA,
]
Device = Annotated[str, Field(max_length=DEVICE_MAX), _NO_NUL, _NO_NUL_SCHEMA]
AgentName = Annotated[str, Field(max_length=AGENT_MAX), _NO_NUL, _NO_NUL_SCHEMA]
DocId = Annotated[str, Field(min_length=1, max_length=DOC_ID_MAX), _NO_NUL, _NO_NUL_SCHEMA]
# Blank texts are rejected too, by the service (a pattern cannot say "not
# blank" the same way in every regex dialect).
Text = Annotated[
    str,
    Field(min_length=1, max_length=settings.MOSS_MAX_TEXT_CHARS),
    _NO_NUL,
    _NO_NUL_SCHEMA,
]
Note = Annotated[str, Field(max_length=settings.MOSS_MAX_TEXT_CHARS), _NO_NUL, _NO_NUL_SCHEMA]
MetadataKey = Annotated[
    str, Field(min_length=1, max_length=METADATA_VALUE_MAX), _NO_NUL, _NO_NUL_SCHEMA
]
MetadataValue = Annotated[str, Field(max_length=METADATA_VALUE_MAX), _NO_NUL, _NO_NUL_SCHEMA]
CustomerId = Annotated[
    str, Field(min_length=1, max_length=METADATA_VALUE_MAX), _NO_NUL, _NO_NUL_SCHEMA
]
# Pydantic validates keys and values; the schema is spelled out because its
# generated one cannot say "at most N keys" of a validated dict.
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    AfterValidator(_metadata_channel),
    Field(max_length=METADATA_MAX_KEYS),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": METADATA_MAX_KEYS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": METADATA_VALUE_MAX,
                "pattern": NO_NUL_PATTERN,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": METADATA_VALUE_MAX,
                "pattern": NO_NUL_PATTERN,
            },
            "properties": {
                "channel": {
                    "type": "string",
                    "maxLength": METADATA_CHANNEL_MAX,
                    "pattern": NO_NUL_PATTERN,
                }
            },
            "description": f"String values; `channel` at most {METADATA_CHANNEL_MAX} characters",
        }
    ),
]
# Stored as 32-bit floats.
EmbeddingValue = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX, allow_inf_nan=False)]
Embedding = Annotated[
    list[EmbeddingValue],
    Field(
        min_length=settings.EMBEDDING_DIMENSIONS,
        max_length=settings.EMBEDDING_DIMENSIONS,
        description="From the session's model (or your own): finite, not all zeros",
    ),
]

# Who is acting, as the audit log records it (an API key's prefix when absent).
XAgent = Annotated[
    str,
    _NO_NUL,
    _NO_NUL_SCHEMA,
    Header(
        "",
        alias="X-Agent",
        max_length=AGENT_MAX,
        description="The agent's name, as the audit log records it",
    ),
]
