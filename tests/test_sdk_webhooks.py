"""moss_client.webhooks.verify against the reference `standardwebhooks` library."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from moss_client import MossError
from moss_client.errors import WebhookVerificationError
from moss_client.webhooks import verify
from sessions_app.webhooks.signing import headers_sign, secret_generate

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example
EVENT = {"id": "evt_1", "cursor": 7, "type": "turn.added", "data": {"text": "héllo"}}
BODY = json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False)


def signed_by_the_library(
    body: str = BODY, *, secret: str = SECRET, at: datetime | None = None
) -> dict[str, str]:
    at = at or datetime.now(tz=UTC)
    return {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("evt_1", at, body),
    }


def test_a_webhook_signed_by_the_reference_library_verifies():
    assert verify(SECRET, signed_by_the_library(), BODY.encode()) == EVENT
    assert verify(SECRET, signed_by_the_library(), BODY) == EVENT


def test_header_names_may_come_in_any_case():
    headers = {k.title(): v for k, v in signed_by_the_library().items()}
    assert verify(SECRET, headers, BODY.encode()) == EVENT


def test_what_the_server_sends_verifies_with_the_reference_library_and_the_sdk():
    secret = secret_generate()
    headers = headers_sign(
        secret=secret,
        event_id="evt_1",
        event_type="turn.added",
        body=BODY,
        at=datetime.now(tz=UTC),
    )
    assert Webhook(secret).verify(BODY.encode(), headers) == EVENT
    assert verify(secret, headers, BODY.encode()) == EVENT
    assert headers["x-moss-event-type"] == "turn.added"


def test_one_of_several_signatures_may_match():
    headers = signed_by_the_library()
    other = signed_by_the_library(secret=secret_generate())["webhook-signature"]
    headers["webhook-signature"] = f"{other} {headers['webhook-signature']}"
    assert verify(SECRET, headers, BODY) == EVENT


BAD = [
    ("tampered body", lambda h: (h, BODY.replace("7", "8")), "No matching signature found"),
    (
        "wrong secret",
        lambda h: (
            {
                **h,
                "webhook-signature": signed_by_the_library(secret=secret_generate())[
                    "webhook-signature"
                ],
            },
            BODY,
        ),
        "No matching signature found",
    ),
    ("another id", lambda h: ({**h, "webhook-id": "evt_2"}, BODY), "No matching signature"),
    (
        "stale timestamp",
        lambda h: (signed_by_the_library(at=datetime.now(tz=UTC) - timedelta(minutes=6)), BODY),
        "Message timestamp too old",
    ),
    (
        "future timestamp",
        lambda h: (signed_by_the_library(at=datetime.now(tz=UTC) + timedelta(minutes=6)), BODY),
        "Message timestamp too new",
    ),
    ("missing signature", lambda h: ({**h, "webhook-signature": ""}, BODY), "Missing required"),
    ("no headers", lambda h: ({}, BODY), "Missing required headers"),
    ("timestamp not a number", lambda h: ({**h, "webhook-timestamp": "soon"}, BODY), "Invalid"),
    ("signature without version", lambda h: ({**h, "webhook-signature": "abc"}, BODY), "malformed"),
    ("signature badly padded", lambda h: ({**h, "webhook-signature": "v1,abc"}, BODY), "malformed"),
    ("signature not base64", lambda h: ({**h, "webhook-signature": "v1,%%%"}, BODY), "No matching"),
    ("only v2 signatures", lambda h: ({**h, "webhook-signature": "v2,abc="}, BODY), "No matching"),
    ("body not UTF-8", lambda h: (h, b"\xff\xfe"), "malformed"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_or_stale_webhook_raises_the_typed_error(case, change, message):
    headers, body = change(signed_by_the_library())
    with pytest.raises(WebhookVerificationError) as raised:
        verify(SECRET, headers, body)
    assert message in raised.value.message
    assert isinstance(raised.value, MossError) and raised.value.code == "invalid_signature"


def test_a_signed_body_that_is_not_a_json_object_is_refused():
    headers = signed_by_the_library("[1, 2]")
    with pytest.raises(WebhookVerificationError, match="not a JSON object"):
        verify(SECRET, headers, "[1, 2]")
    headers = signed_by_the_library("nope")
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify(SECRET, headers, "nope")


def test_a_malformed_secret_is_the_typed_error_too():
    with pytest.raises(WebhookVerificationError, match="secret is not valid"):
        verify("whsec_", signed_by_the_library(), BODY)


def test_the_timestamp_tolerance_is_five_minutes():
    recent = datetime.fromtimestamp(time.time() - 240, tz=UTC)
    assert verify(SECRET, signed_by_the_library(at=recent), BODY) == EVENT
