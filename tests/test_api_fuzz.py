import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from moss_web.wsgi import application
from sessions_app.services.projects import project_create

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)


@pytest.fixture
def key_headers(db):
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    project, key = project_create(name="Fuzz")
    yield {"X-Project-Id": project.public_id, "X-Project-Key": key}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzz(case, key_headers):
    case.call_and_validate(headers=key_headers)
