"""Standard Webhooks signatures, made with the maintained `standardwebhooks` library.

A receiver verifies with the same library (Python, TypeScript, …) or with
`moss_client.webhooks.verify`: HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>"
with the endpoint's `whsec_` secret.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "moss-web-webhooks/1"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def headers_sign(
    *, secret: str, event_id: str, event_type: str, body: str, at: datetime
) -> dict[str, str]:
    """The headers of one delivery. `at` is when it is sent (webhook-timestamp)."""
    seconds = int(at.timestamp())
    # The library reads the timestamp as UTC; hand it one that is.
    signature = Webhook(secret).sign(event_id, datetime.fromtimestamp(seconds, tz=UTC), body)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature,
        "x-moss-event-type": event_type,
    }
