import httpx


def test_healthz_reports_database_and_model_ready(live_server_url):
    response = httpx.get(f"{live_server_url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["pgvector"]
    assert body["status"] == "ok"
    assert body["model"] == {"ok": True, "id": "all-MiniLM-L6-v2", "state": "ready"}
