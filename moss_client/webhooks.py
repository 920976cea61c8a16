"""Verify a webhook from moss-web before trusting it (Standard Webhooks).

    from moss_client.webhooks import verify
    from moss_client.errors import WebhookVerificationError

    try:
        event = verify(SECRET, request.headers, request.body)  # the raw body bytes
    except WebhookVerificationError:
        return 400
    if seen(event["id"]):  # deliveries are at-least-once: deduplicate by id
        return 200

The maintained `standardwebhooks` library does the checking: an HMAC-SHA256
signature over "<webhook-id>.<webhook-timestamp>.<body>" with the endpoint's
`whsec_` secret, and a timestamp within five minutes of now (replays).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as _LibraryError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from moss_client.errors import WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify"]


def verify(secret: str, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
    """The event the webhook carries, once its signature and timestamp check out.

    `headers` is any mapping of the request's headers (names in any case);
    `body` is the raw body exactly as received, not re-serialized JSON.
    Raises WebhookVerificationError otherwise."""
    try:
        webhook = Webhook(secret)
    except (ValueError, RuntimeError, EmptyWebhookSecretError) as exc:
        raise WebhookVerificationError(f"the webhook secret is not valid: {exc}") from exc
    try:
        event = webhook.verify(body, {str(k): str(v) for k, v in headers.items()})
    except _LibraryError as exc:
        raise WebhookVerificationError(str(exc), code="invalid_signature") from exc
    except ValueError as exc:
        # The library lets malformed headers (binascii.Error, unpacking) and bodies
        # (UnicodeDecodeError, JSONDecodeError) through as ValueErrors.
        if isinstance(exc, json.JSONDecodeError):
            message = "the body is not JSON"
        else:
            message = "malformed webhook headers or body"
        raise WebhookVerificationError(message, code="invalid_signature") from exc
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object", code="invalid_signature")
    return event
