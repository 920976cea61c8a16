import threading

import pytest

CONVERSATION = [
    {
        "id": "turn-1",
        "text": "Customer reported a duplicate $49.99 charge.",
        "metadata": {"channel": "voice", "role": "customer", "minute": "1"},
    },
    {
        "id": "turn-2",
        "text": "Agent confirmed a refund in 3-5 business days.",
        "metadata": {"channel": "voice", "role": "agent", "minute": "2"},
    },
    {
        "id": "turn-3",
        "text": "The customer asked to change the delivery address to Leith.",
        "metadata": {"channel": "chat", "role": "customer", "minute": "10"},
    },
    {
        "id": "turn-4",
        "text": "Invoice INV-88213 was emailed again.",
        "metadata": {"channel": "email", "role": "agent", "minute": "30"},
    },
    {
        "id": "turn-5",
        "text": "My internet connection keeps dropping every evening.",
        "metadata": {"channel": "sms", "role": "customer", "minute": "45"},
    },
]


@pytest.fixture
def conversation(api):
    api.post("/sessions", {"name": "conv-123"})
    api.post("/sessions/conv-123/docs", {"docs": CONVERSATION})
    return api


def query(api, **body):
    response = api.post("/sessions/conv-123/query", body)
    assert response.status_code == 200, response.json()
    return response.json()


def ids(result):
    return [doc["id"] for doc in result["docs"]]


def test_a_query_returns_scored_docs_with_metadata(conversation):
    result = query(conversation, query="status of the refund", top_k=3)
    assert ids(result)[0] == "turn-2"
    assert len(result["docs"]) == 3
    first = result["docs"][0]
    assert first["text"] == "Agent confirmed a refund in 3-5 business days."
    assert first["metadata"]["channel"] == "voice"
    scores = [doc["score"] for doc in result["docs"]]
    assert scores == sorted(scores, reverse=True)
    assert result["query"] == "status of the refund"
    assert result["index_name"] == "conv-123"
    assert result["time_taken_ms"] > 0


def test_pure_keyword_search_finds_an_exact_token_the_model_misses(conversation):
    # An invoice number carries no meaning for the model; full-text search finds it.
    keyword = query(conversation, query="INV-88213", alpha=0.0, top_k=5)
    assert ids(keyword) == ["turn-4"]


def test_pure_semantic_search_finds_a_paraphrase_with_no_shared_words(conversation):
    paraphrase = "my wifi stops working at night"
    assert query(conversation, query=paraphrase, alpha=0.0, top_k=5)["docs"] == []
    assert ids(query(conversation, query=paraphrase, alpha=1.0, top_k=1)) == ["turn-5"]


def test_blending_ranks_a_doc_matching_both_ways_first(conversation):
    result = query(conversation, query="refund", alpha=0.5, top_k=5)
    assert ids(result)[0] == "turn-2"
    assert result["docs"][0]["score"] > result["docs"][1]["score"]


def test_filters_apply_every_operator(conversation):
    def matching(flt):
        return sorted(ids(query(conversation, query="customer", top_k=10, filter=flt)))

    assert matching({"channel": "voice"}) == ["turn-1", "turn-2"]
    assert matching({"channel": {"$eq": "chat"}}) == ["turn-3"]
    assert matching({"channel": {"$ne": "voice"}}) == ["turn-3", "turn-4", "turn-5"]
    assert matching({"minute": {"$gt": 9}}) == ["turn-3", "turn-4", "turn-5"]
    assert matching({"minute": {"$gte": 10, "$lt": 45}}) == ["turn-3", "turn-4"]
    assert matching({"minute": {"$lte": 2}}) == ["turn-1", "turn-2"]
    assert matching({"channel": {"$in": ["sms", "email"]}}) == ["turn-4", "turn-5"]
    assert matching({"channel": {"$nin": ["voice", "chat"]}}) == ["turn-4", "turn-5"]
    assert matching({"$or": [{"channel": "sms"}, {"role": "agent", "minute": {"$gt": 5}}]}) == [
        "turn-4",
        "turn-5",
    ]
    assert matching({"$and": [{"role": "customer"}, {"channel": {"$in": ["voice", "sms"]}}]}) == [
        "turn-1",
        "turn-5",
    ]
    assert matching({"missing-key": {"$nin": ["x"]}}) == [d["id"] for d in CONVERSATION]


def test_numbers_stored_as_strings_compare_and_one_past_numeric_s_range_is_not_a_number(
    conversation,
):
    """ "1e999999" overflows PostgreSQL's numeric: cast, it failed every filtered query
    on its session with a 500."""
    docs = [
        {"id": "as-text", "text": "customer said twelve", "metadata": {"minute": "12"}},
        {"id": "exponent", "text": "customer said 1e5", "metadata": {"minute": "1e5"}},
        {"id": "huge", "text": "customer said huge", "metadata": {"minute": "1e999999"}},
    ]
    conversation.post("/sessions/conv-123/docs", {"docs": docs})
    found = ids(query(conversation, query="customer", top_k=10, filter={"minute": {"$gt": 11}}))
    assert sorted(found) == ["as-text", "exponent", "turn-4", "turn-5"]


def test_in_and_nin_compare_numbers_as_eq_does(conversation):
    """A number in $in matches what {"$eq": number} matches: "12.0" stored is 12."""
    docs = [
        {"id": "twelve", "text": "customer said twelve", "metadata": {"minute": "12.0"}},
        {"id": "word", "text": "customer said a word", "metadata": {"minute": "noon"}},
    ]
    conversation.post("/sessions/conv-123/docs", {"docs": docs})

    def matching(flt):
        return sorted(ids(query(conversation, query="customer", top_k=10, filter=flt)))

    assert matching({"minute": 12}) == ["twelve"]
    assert matching({"minute": {"$in": [12]}}) == ["twelve"]
    assert matching({"minute": {"$in": [12.0, "noon"]}}) == ["twelve", "word"]
    others = sorted(str(d["id"]) for d in CONVERSATION)  # none of them at minute 12
    assert matching({"minute": {"$nin": [12, "noon"]}}) == others


def test_a_query_embedding_replaces_the_model(conversation):
    vector = [0.0] * 384
    vector[0] = 1.0
    conversation.post(
        "/sessions/conv-123/docs",
        {"docs": [{"id": "probe", "text": "unrelated words", "embedding": vector}]},
    )
    result = query(conversation, query="anything", alpha=1.0, top_k=1, embedding=vector)
    assert ids(result) == ["probe"]
    assert result["docs"][0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_a_customer_query_searches_all_their_sessions_only(api):
    api.post("/sessions", {"name": "voice-1", "metadata": {"customer_id": "c-1"}})
    api.post("/sessions", {"name": "chat-1", "metadata": {"customer_id": "c-1"}})
    api.post("/sessions", {"name": "other", "metadata": {"customer_id": "c-2"}})
    for name in ("voice-1", "chat-1", "other"):
        api.post(
            f"/sessions/{name}/docs",
            {"docs": [{"id": "t1", "text": f"The refund for {name} was approved."}]},
        )
    result = api.post("/query", {"customer_id": "c-1", "query": "refund approved", "top_k": 10})
    found = sorted(doc["index_name"] for doc in result.json()["docs"])
    assert found == ["chat-1", "voice-1"]


@pytest.fixture
def encodes(monkeypatch):
    """The threads the query encodes ran on (the real model still encodes)."""
    from sessions_app import embeddings

    threads = []
    real = embeddings.query_embed

    def recorded(text):
        threads.append(threading.current_thread().name)
        return real(text)

    monkeypatch.setattr(embeddings, "query_embed", recorded)
    return threads


def test_the_query_encodes_on_the_query_pool_beside_the_session_read(conversation, encodes):
    # The session and the index's state are read while the model encodes (README,
    # "The request path"); the ranking is the same as a search started afresh.
    result = query(conversation, query="status of the refund", top_k=3)
    assert len(encodes) == 1 and encodes[0].startswith("moss-query")
    assert ids(result)[0] == "turn-2"
    customer = conversation.post("/query", {"customer_id": "nobody", "query": "refund"})
    assert customer.status_code == 200 and customer.json()["docs"] == []
    assert len(encodes) == 2 and encodes[1].startswith("moss-query")


@pytest.mark.parametrize(
    "body",
    [
        {"query": "   "},
        {"query": "refund", "top_k": 0},
        {"query": "refund", "filter": {"channel": {"$regex": "v.*"}}},
        {"query": "refund", "embedding": [0.1, 0.2]},
    ],
)
def test_a_rejected_query_encodes_nothing(conversation, encodes, body):
    response = conversation.post("/sessions/conv-123/query", body)
    assert response.status_code in (400, 422), response.json()
    assert encodes == []


def test_a_query_of_an_unknown_session_is_404_with_or_without_an_encode(conversation, encodes):
    response = conversation.post("/sessions/nope/query", {"query": "refund"})
    assert response.status_code == 404
    assert "nope" in response.json()["message"]
