"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every operation in the schema, including ones added later, gets valid and
invalid requests (bodies, path, query and header values, missing or wrong
keys, other methods and content types) and must answer without a server
error, with a documented status code, and with a body matching the documented
schema. Requests run
in-process through the real WSGI app against the test database and model.

Only "every valid-looking request succeeds" is left out: some rules cannot be
said in a schema (an embedding must not be all zeros, a team must exist), and
those answers are documented 422s.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from moss_web.api import api
from moss_web.wsgi import application
from sessions_app.actors import Actor
from sessions_app.models import Project
from sessions_app.services.projects import project_create
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert
from sessions_app.validation import session_name_is_valid

# Bounded for `make test`: about a minute on two idle cores for today's ten operations.
EXAMPLES_PER_OPERATION = 25
KNOWN_SESSION = "conv-fuzz"

# From the API object, not /api/v1/openapi.json, which MOSS_API_DOCS may switch off.
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema())))
schema.app = application
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    # The API ignores parameters and fields it does not know (README, "API v1"), so a request
    # is not invalid for carrying one.
    allow_extra_parameters=False,
)


@pytest.fixture
def project_headers(wsgi_app: Any, settings: Any) -> tuple[Project, dict[str, str]]:
    # Throttled, every later request would be a 429: the throttles have tests of their own.
    settings.MOSS_API_KEY_RATE = None
    settings.MOSS_API_AUTH_FAILURE_RATE = None
    project, key = project_create(name="Fuzz")
    return project, {"X-Project-Id": project.public_id, "X-Project-Key": key}


def known_session(project: Project) -> None:
    """A session with turns, so that operations on a session get past 404."""
    session, created = session_open(project=project, name=KNOWN_SESSION, actor=Actor.system())
    if created:
        docs = [
            DocInput(id="t1", text="Customer reported a duplicate charge.", metadata={"n": "1"}),
            DocInput(id="t2", text="Agent confirmed a refund.", metadata={"channel": "chat"}),
        ]
        turns_upsert(session=session, docs=docs, actor=Actor.system())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, project_headers: tuple[Project, dict[str, str]]
) -> None:
    project, headers = project_headers
    name = (case.path_parameters or {}).get("name")
    # Half of the valid session names become the known session (swapping one
    # valid name for another keeps an invalid request invalid).
    if isinstance(name, str) and session_name_is_valid(name) and len(name) % 2 == 0:
        known_session(project)
        case.path_parameters["name"] = KNOWN_SESSION  # type: ignore[index]
    # negative_data_rejection is left out too: the key headers given here replace the ones a
    # negative case drops, so such a case is valid when sent and rightly answers 200.
    case.call_and_validate(
        headers=headers, excluded_checks=[positive_data_acceptance, negative_data_rejection]
    )
