"""The API docs page (Swagger UI) is served from this server's static files, never a CDN, and
MOSS_API_DOCS=false removes it with the OpenAPI schema."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from tests.conftest import ApiClient


def test_the_docs_page_loads_swagger_ui_from_this_server(client: Client) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "//" not in "".join(assets) and "cdn" not in html.lower()
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "moss-web API"


def test_docs_can_be_switched_off(settings: Any, api: ApiClient) -> None:
    settings.MOSS_API_DOCS = False
    assert api.client.get("/api/v1/docs").status_code == 404
    assert api.client.get("/api/v1/openapi.json").status_code == 404
    assert api.get("/sessions").status_code == 200  # the API itself is unaffected
