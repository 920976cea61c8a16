"""Values the database cannot hold (too long for their column, NUL characters) are 4xx JSON
errors naming the field, checked at the edge before anything is written; the limits are
declared in the OpenAPI schema; any error under /api/ is JSON in the one error shape."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.test import Client

from moss_web.api import api
from sessions_app.api import sessions as api_operations
from sessions_app.models import AuditEvent, Handoff, Session, Turn

NUL = "a\x00b"


@pytest.fixture
def s1(api):
    api.post("/sessions", {"name": "s1"})
    api.post("/sessions/s1/docs", {"docs": [{"id": "t1", "text": "a stored turn"}]})
    AuditEvent.objects.all().delete()
    return api


def counts():
    return (
        Session.objects.count(),
        Turn.objects.count(),
        Handoff.objects.count(),
        AuditEvent.objects.count(),
    )


def assert_rejected(response, status, *fragments):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}
    for fragment in fragments:
        assert fragment in body["message"]


def post_as(api, path, body, **headers):
    client = Client(headers={"X-Project-Id": api.project.public_id, "X-Project-Key": api.key})
    return client.post(f"/api/v1{path}", body, content_type="application/json", headers=headers)


OPEN_CASES = [
    ("channel over 50", {"name": "s2", "channel": "c" * 51}, "channel: must be at most 50"),
    ("channel with NUL", {"name": "s2", "channel": NUL}, "channel: must not contain NUL"),
    ("device over 100", {"name": "s2", "device": "d" * 101}, "device: must be at most 100"),
    ("device with NUL", {"name": "s2", "device": NUL}, "device: must not contain NUL"),
    ("model_id with NUL", {"name": "s2", "model_id": NUL}, "model_id: must not contain NUL"),
    (
        "metadata value with NUL",
        {"name": "s2", "metadata": {"customer_id": NUL}},
        "metadata.customer_id: must not contain NUL",
    ),
    ("name with NUL", {"name": "s\x002"}, "name: invalid session name"),
    ("name ending in a newline", {"name": "s2\n"}, "name: invalid session name"),
]


@pytest.mark.parametrize(("case", "body", "message"), OPEN_CASES, ids=[c[0] for c in OPEN_CASES])
def test_opening_a_session_with_a_bad_value_writes_nothing(s1, case, body, message):
    before = counts()
    assert_rejected(s1.post("/sessions", body), 422, message)
    assert counts() == before


def test_an_x_agent_over_200_characters_is_rejected(s1):
    before = counts()
    response = post_as(s1, "/sessions", {"name": "s2"}, **{"X-Agent": "a" * 201})
    assert_rejected(response, 422, "X-Agent: must be at most 200 characters")
    assert counts() == before
    accepted = post_as(s1, "/sessions", {"name": "s2"}, **{"X-Agent": "a" * 200})
    assert accepted.status_code == 201
    assert AuditEvent.objects.get(kind="session.created").actor_label == "a" * 200


PUSH_CASES = [
    ("target over 200", {"to": "bot", "target": "t" * 201}, "target: must be at most 200"),
    ("from_agent over 200", {"from_agent": "f" * 201}, "from_agent: must be at most 200"),
    ("from_channel over 50", {"from_channel": "c" * 51}, "from_channel: must be at most 50"),
    ("NUL in reason", {"to": "humans", "reason": NUL}, "reason: must not contain NUL"),
    ("NUL in target", {"to": "team", "target": NUL}, "target: must not contain NUL"),
]


@pytest.mark.parametrize(("case", "body", "message"), PUSH_CASES, ids=[c[0] for c in PUSH_CASES])
def test_a_push_with_a_bad_value_records_no_handoff(s1, case, body, message):
    before = counts()
    assert_rejected(s1.post("/sessions/s1/push", body), 422, message)
    assert counts() == before
    assert Session.objects.get(name="s1").version == 0


DOC_CASES = [
    (
        "metadata channel over 50",
        {"id": "t2", "text": "hi", "metadata": {"channel": "c" * 51}},
        "docs.0.metadata: channel must be at most 50 characters",
    ),
    ("NUL in text", {"id": "t2", "text": NUL}, "docs.0.text: must not contain NUL"),
    ("NUL in id", {"id": NUL, "text": "hi"}, "docs.0.id: must not contain NUL"),
    (
        "NUL in a metadata value",
        {"id": "t2", "text": "hi", "metadata": {"role": NUL}},
        "docs.0.metadata.role: must not contain NUL",
    ),
    (
        "NUL in a metadata key",
        {"id": "t2", "text": "hi", "metadata": {NUL: "x"}},
        "must not contain NUL",
    ),
    (
        "embedding beyond 32-bit floats",
        {"id": "t2", "text": "hi", "embedding": [1e39] + [0.1] * 383},
        "docs.0.embedding.0: must be at most 3.4028234663852886e+38",
    ),
]


@pytest.mark.parametrize(("case", "doc", "message"), DOC_CASES, ids=[c[0] for c in DOC_CASES])
def test_adding_a_bad_doc_writes_nothing(s1, case, doc, message):
    before = counts()
    response = s1.post("/sessions/s1/docs", {"docs": [doc], "channel": "chat"})
    assert_rejected(response, 422, message)
    assert counts() == before


def test_an_add_call_channel_over_50_is_rejected(s1):
    response = s1.post(
        "/sessions/s1/docs", {"docs": [{"id": "t2", "text": "hi"}], "channel": "c" * 51}
    )
    assert_rejected(response, 422, "channel: must be at most 50 characters")
    assert not Turn.objects.filter(doc_id="t2").exists()


def test_an_embedding_that_is_zero_as_32_bit_floats_is_rejected(s1):
    tiny = {"id": "t2", "text": "hi", "embedding": [1e-50] * 384}
    assert_rejected(s1.post("/sessions/s1/docs", {"docs": [tiny]}), 422, "must not be all zeros")


QUERY_VALUE_CASES = [
    ("NUL in prefix", "/sessions", {"prefix": NUL}, "prefix: must not contain NUL"),
    ("NUL in customer_id", "/sessions", {"customer_id": NUL}, "customer_id: must not contain NUL"),
    ("prefix over 128", "/sessions", {"prefix": "p" * 129}, "prefix: must be at most 128"),
    ("bad cursor", "/sessions", {"cursor": "abc"}, "cursor: must be a value returned"),
    ("cursor beyond bigint", "/sessions", {"cursor": "9" * 30}, "cursor: must be a value returned"),
    ("limit 0", "/sessions", {"limit": 0}, "limit: must be at least 1"),
    ("NUL in ids", "/sessions/s1/docs", {"ids": ["t1", NUL]}, "ids.1: must not contain NUL"),
    ("id over 128", "/sessions/s1/docs", {"ids": ["i" * 129]}, "ids.0: must be at most 128"),
    ("limit 501", "/sessions/s1/docs", {"limit": 501}, "limit: must be at most 500"),
    # int() refuses strings of more than 4,300 digits with a ValueError.
    ("events cursor of 5,000 digits", "/events", {"after": "9" * 5000}, "after must be a cursor"),
    ("events cursor beyond bigint", "/events", {"after": "9" * 19}, "after must be a cursor"),
]


@pytest.mark.parametrize(
    ("case", "path", "params", "message"), QUERY_VALUE_CASES, ids=[c[0] for c in QUERY_VALUE_CASES]
)
def test_bad_query_string_values_are_rejected(s1, case, path, params, message):
    assert_rejected(s1.get(path, **params), 422, message)


@pytest.mark.parametrize("name", ["a\x00b", "-dash", "x" * 129])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("delete", ""),
        ("get", "/docs"),
        ("post", "/docs"),
        ("post", "/docs/delete"),
        ("post", "/query"),
        ("post", "/push"),
    ],
)
def test_an_invalid_session_name_in_the_path_is_a_422(s1, name, method, suffix):
    path = f"/api/v1/sessions/{quote(name, safe='')}{suffix}"
    before = counts()
    if method == "post":
        response = s1.client.post(path, {}, content_type="application/json")
    else:
        response = getattr(s1.client, method)(path)
    assert_rejected(response, 422, "name: invalid session name")
    assert counts() == before


def test_nul_in_ids_to_delete_is_rejected(s1):
    response = s1.post("/sessions/s1/docs/delete", {"ids": ["t1", NUL]})
    assert_rejected(response, 422, "ids.1: must not contain NUL")
    assert Turn.objects.filter(doc_id="t1").exists()


FILTER_CASES = [
    ("NUL in a filter key", {NUL: "v"}, "filter keys must be non-empty"),
    ("NUL in a filter value", {"channel": NUL}, "strings must not contain NUL"),
    ("NUL in an $in value", {"channel": {"$in": ["chat", NUL]}}, "must not contain NUL"),
    ("lone surrogate in a key", {"k\ud800": "v"}, "unpaired surrogates"),
    ("infinite number", {"n": {"$gt": float("inf")}}, "takes a finite number"),
]


@pytest.mark.parametrize(
    ("case", "spec", "message"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES]
)
def test_bad_filter_keys_and_values_are_rejected(s1, case, spec, message):
    assert_rejected(s1.post("/sessions/s1/query", {"query": "x", "filter": spec}), 422, message)
    body = {"query": "x", "customer_id": "c1", "filter": spec}
    assert_rejected(s1.post("/query", body), 422, message)


def test_a_lone_surrogate_in_a_filter_value_is_rejected(s1):
    raw = '{"query": "x", "alpha": 0.0, "filter": {"channel": "\\ud800"}}'
    response = s1.client.post("/api/v1/sessions/s1/query", raw, content_type="application/json")
    assert_rejected(response, 422, "unpaired surrogates")


# Raw JSON: the escapes of lone UTF-16 surrogates, which UTF-8 (and so PostgreSQL) cannot hold.
SURROGATE_CASES = [
    ("/sessions", '{"name": "s2", "channel": "\\ud800"}', "channel"),
    (
        "/sessions",
        '{"name": "s2", "metadata": {"customer": {"id": "\\udfff"}}}',
        "metadata.customer.id",
    ),
    ("/sessions", '{"name": "s2", "metadata": {"k\\ud800": 1}}', "metadata.k\\ud800.[key]"),
    (
        "/sessions/s1/docs",
        '{"docs": [{"id": "t2", "text": "ok"}, {"id": "t3", "text": "a\\ud800"}]}',
        "docs.1.text",
    ),
    (
        "/sessions/s1/docs",
        '{"docs": [{"id": "t2", "text": "ok", "metadata": {"k": "\\udc00"}}]}',
        "docs.0.metadata.k",
    ),
    ("/sessions/s1/query", '{"query": "\\ud800"}', "query"),
    ("/sessions/s1/push", '{"to": "humans", "reason": "\\ud800"}', "reason"),
    ("/query", '{"query": "refund", "customer_id": "\\ud800"}', "customer_id"),
    ("/webhooks", '{"url": "https://example.com/\\ud800"}', "url"),
]


@pytest.mark.parametrize(("path", "raw", "where"), SURROGATE_CASES)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_422_naming_it(s1, path, raw, where):
    before = counts()
    response = s1.client.post(f"/api/v1{path}", raw, content_type="application/json")
    assert_rejected(response, 422, f"{where}: must not contain unpaired surrogates")
    assert counts() == before


def test_an_escaped_surrogate_pair_is_a_character_like_any_other(s1):
    smile = "\\ud83d\\ude00"  # the JSON escape of U+1F600, as a pair
    raw = f'{{"docs": [{{"id": "t2", "text": "thanks {smile}", "metadata": {{"k": "{smile}"}}}}]}}'
    response = s1.client.post("/api/v1/sessions/s1/docs", raw, content_type="application/json")
    assert response.status_code == 200, response.content
    stored = Turn.objects.get(doc_id="t2")
    assert (stored.text, stored.metadata) == ("thanks \U0001f600", {"k": "\U0001f600"})


def test_the_webhook_operations_check_x_agent(s1, settings):
    settings.MOSS_WEBHOOK_ALLOW_PRIVATE = True
    before = counts()
    body = {"url": "http://127.0.0.1:9/hooks"}
    response = post_as(s1, "/webhooks", body, **{"X-Agent": "a" * 201})
    assert_rejected(response, 422, "X-Agent: must be at most 200 characters")
    assert counts() == before
    created = post_as(s1, "/webhooks", body, **{"X-Agent": "ops-bot"})
    assert created.status_code == 201
    assert AuditEvent.objects.get(kind="webhook_created").actor_label.endswith("ops-bot")
    client = Client(headers={"X-Project-Id": s1.project.public_id, "X-Project-Key": s1.key})
    url = f"/api/v1/webhooks/{created.json()['id']}"
    assert_rejected(
        client.delete(url, headers={"X-Agent": NUL}), 422, "X-Agent: must not contain NUL"
    )
    assert client.delete(url).status_code == 204


def test_nul_in_the_customer_query_customer_id_is_rejected(s1):
    response = s1.post("/query", {"query": "x", "customer_id": NUL})
    assert_rejected(response, 422, "customer_id: must not contain NUL")


def test_a_non_ascii_project_id_with_a_valid_key_is_a_401(s1):
    client = Client(headers={"X-Project-Id": "proj_é", "X-Project-Key": s1.key})
    assert_rejected(client.get("/api/v1/sessions"), 401, "X-Project-Key")


def test_an_unknown_api_path_is_a_json_404(api):
    assert_rejected(api.client.get("/api/v1/nothing-here"), 404, "no API operation")
    assert_rejected(Client().get("/api/v2/sessions"), 404, "no API operation")


def test_pages_outside_the_api_keep_html_errors(db):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unexpected_error_in_an_operation_is_a_logged_json_500(s1, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_operations, "session_get", broken)
    response = s1.get("/sessions/s1")
    assert_rejected(response, 500)
    assert response.json() == {
        "error": "server_error",
        "message": "internal server error; it has been logged",
    }
    assert "a bug" in caplog.text


def test_an_error_outside_any_operation_under_api_is_a_json_500(s1, settings):
    # A middleware that fails sits outside the API's own handlers.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_api_input_limits.FailingMiddleware"]
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/sessions")
    assert_rejected(response, 500)
    assert Client(raise_request_exception=False).get("/console/").status_code == 500


class FailingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise RuntimeError("middleware bug")


def test_the_schema_declares_every_limit_and_every_error():
    schema = json.loads(json.dumps(api.get_openapi_schema()))
    components = schema["components"]["schemas"]
    push = components["PushIn"]["properties"]
    assert push["target"]["maxLength"] == 200
    assert push["from_channel"]["maxLength"] == 50
    assert push["reason"]["pattern"] == r"^[^\x00]*$"
    open_in = components["SessionOpenIn"]["properties"]
    assert open_in["device"]["maxLength"] == 100
    assert open_in["name"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$"
    metadata = components["DocumentIn"]["properties"]["metadata"]["anyOf"][0]
    assert metadata["properties"]["channel"]["maxLength"] == 50
    assert metadata["maxProperties"] == 50
    assert components["AddDocsIn"]["properties"]["docs"]["maxItems"] == 500
    add_docs = schema["paths"]["/api/v1/sessions/{name}/docs"]["post"]
    agent = next(p for p in add_docs["parameters"] if p["name"] == "X-Agent")
    assert (agent["in"], agent["schema"]["maxLength"]) == ("header", 200)
    assert set(add_docs["responses"]) == {
        *("200", "400", "401", "404", "409", "413", "422", "429", "500")
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if int(code) >= 400}
            assert {"401", "422", "429", "500"} <= errors, f"{method} {path}"
            for code in errors:
                reply = operation["responses"][code]["content"]["application/json"]["schema"]
                assert reply == {"$ref": "#/components/schemas/ErrorOut"}, f"{method} {path}"
            assert {"ProjectKeyAuth": [], "ProjectIdHeader": []} in operation["security"]


def test_a_query_parameter_given_twice_is_rejected_unless_it_is_a_list(s1):
    response = s1.client.get("/api/v1/sessions?customer_id=a&customer_id=b")
    assert_rejected(response, 422, "customer_id: must be given once")
    response = s1.client.get("/api/v1/sessions/s1/docs?ids=nope&ids=t1")
    assert [doc["id"] for doc in response.json()["docs"]] == ["t1"]


def test_unknown_query_parameters_and_body_fields_are_ignored(s1):
    assert s1.client.get("/api/v1/sessions?future_option=1").status_code == 200
    assert s1.post("/sessions", {"name": "s1", "future_field": 1}).status_code == 200


def test_more_query_parameters_than_django_parses_is_a_422(s1, settings):
    query = "&".join(f"ids=t{i}" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = s1.client.get(f"/api/v1/sessions/s1/docs?{query}")
    assert_rejected(response, 422, "too many query or form parameters: at most 1000")
