"""The in-process search index (services/search_index.py): it ranks exactly as the SQL
does, and it never answers from turns that changed after it read them."""

import pytest
from django.db import connection

from sessions_app import embeddings
from sessions_app.actors import Actor
from sessions_app.services import search_index
from sessions_app.services.search import turns_search
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert

THREAD = [
    ("bot", "Thanks for calling. Can you confirm the last four digits of the card?"),
    ("customer", "It ends in 4417."),
    ("bot", "I can see two debits of $84.20 against invoice INV-20931 on 3 March."),
    ("customer", "So can you put one back? My rent goes out on Friday."),
    ("bot", "I've flagged the second debit; a person will refund it within five days."),
    ("agent", "Refund of $84.20 approved, reference RF-5531."),
    ("customer", "The router also reboots itself every night, since the update."),
    ("bot", "Your replacement reference is RP-30021 and the return label RL-4471."),
    ("customer", "I moved house last month, please update my address to 4 Elm Road."),
    ("agent", "Address updated. Call me back on 020 7946 0958 if the router fails again."),
    ("agent", "It restarts because the update changed its power settings."),
]
QUERIES = [
    "what did the bot promise about the refund",
    "invoice number",
    "how much was charged twice",
    "router keeps restarting",
    "RF-5531",
    "when is the rent due",
    "what phone number did the agent give",
    "card ending",
    # A why (a stated cause lifted) and the answer to the best match that asks, lifted.
    "why does the router keep restarting",
    "which card is on the account",
]


def search(session, query, **options):
    options.setdefault("session_ids", [session.pk])
    return turns_search(query=query, **options)


def same_ranking(got, expected):
    """The same hits in the same order, with scores equal to float precision."""
    assert [hit.id for hit in got.docs] == [hit.id for hit in expected.docs]
    assert [hit.score for hit in got.docs] == pytest.approx(
        [hit.score for hit in expected.docs], abs=1e-5
    )
    return True


@pytest.fixture
def in_sql(settings):
    """Run a search with the index switched off: the SQL's answer, the reference."""

    def run(session, query, **options):
        held = settings.MOSS_SEARCH_INDEX_MB
        settings.MOSS_SEARCH_INDEX_MB = 0
        try:
            return search(session, query, **options)
        finally:
            settings.MOSS_SEARCH_INDEX_MB = held

    return run


@pytest.fixture
def note(stored):
    def add(session, doc_id, text):
        actor = Actor.for_key(session.project.api_keys.get(), agent="voice-bot")
        docs = [DocInput(id=doc_id, text=text, metadata={"role": "agent"})]
        turns_upsert(session=session, docs=docs, actor=actor, internal=True)

    return add


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_the_index_ranks_as_the_sql_does(stored, in_sql, note, alpha):
    session = stored("parity", THREAD)
    note(session, "n1", "Private: customer sounded upset about the refund delay.")
    for query in QUERIES:
        for options in (
            {"top_k": 5},
            {"top_k": 10, "include_internal": True},
            {"top_k": 3, "metadata_filter": {"role": {"$in": ["customer", "agent"]}}},
        ):
            expected = in_sql(session, query, alpha=alpha, **options)
            got = search(session, query, alpha=alpha, **options)
            assert (got.served_by, expected.served_by) == ("index", "sql")
            assert same_ranking(got, expected), (query, options)
            assert [hit.seq for hit in got.docs] == [hit.seq for hit in expected.docs]
            assert got.docs == [
                type(hit)(**{**hit.__dict__, "score": got_hit.score})
                for hit, got_hit in zip(expected.docs, got.docs, strict=True)
            ]


def test_the_index_is_used_and_then_kept_in_step_with_appends(stored, in_sql):
    session = stored("appends", THREAD[:4])
    search(session, "refund")
    key = (str(connection.settings_dict["NAME"]), session.pk)
    index = search_index._indexes[key]
    assert index.size == 4

    actor = Actor.for_key(session.project.api_keys.get(), agent="voice-bot")
    text = "The refund RF-1 was paid today ✅ (café — 北京)."
    docs = [DocInput(id="t99", text=text, metadata={"role": "bot", "note": "é ✅"})]
    turns_upsert(session=session, docs=docs, actor=actor)
    got = search(session, "RF-1 paid", alpha=0.9)
    assert got.docs[0].id == "t99"
    assert (got.docs[0].text, got.docs[0].metadata) == (text, {"role": "bot", "note": "é ✅"})
    assert search_index._indexes[key] is index and index.size == 5  # appended, not reloaded
    assert same_ranking(got, in_sql(session, "RF-1 paid", alpha=0.9))


def test_edits_and_deletes_made_elsewhere_reach_the_index(stored, in_sql):
    session = stored("changes", THREAD)
    actor = Actor.for_key(session.project.api_keys.get(), agent="voice-bot")
    assert search(session, "replacement reference", alpha=0.0).docs[0].id == "t8"

    # An edit through the service, a delete, and a raw UPDATE as another process might run.
    turns_upsert(
        session=session,
        docs=[DocInput(id="t8", text="Nothing left to send back.", metadata={"role": "bot"})],
        actor=actor,
    )
    assert "t8" not in [h.id for h in search(session, "replacement reference", alpha=0.0).docs]
    turns_delete(session=session, doc_ids=["t6"], actor=actor)
    assert "t6" not in [h.id for h in search(session, "RF-5531", alpha=0.5, top_k=10).docs]
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE sessions_app_turn SET metadata = \'{"role": "robot"}\''
            " WHERE session_id = %s AND doc_id = 't1'",
            [session.pk],
        )
    for query in QUERIES:
        got = search(session, query, alpha=0.9, top_k=10)
        assert same_ranking(got, in_sql(session, query, alpha=0.9, top_k=10))
    # What the index shows of a hit is as fresh as its score.
    shown = {hit.id: hit for hit in search(session, "refund", alpha=1.0, top_k=20).docs}
    assert shown["t1"].metadata == {"role": "robot"}
    assert shown["t8"].text == "Nothing left to send back."
    assert "t6" not in shown and search(session, "refund").served_by == "index"


def test_a_session_bigger_than_the_budget_is_searched_in_sql(stored, settings):
    session = stored("big", THREAD)
    settings.MOSS_SEARCH_INDEX_MB = 0
    search_index.session_index_clear()
    result = search(session, "refund")
    assert result.docs and result.served_by == "sql"
    assert not search_index._indexes


def test_a_search_across_sessions_ranks_as_the_sql_does(stored, in_sql):
    first = stored("across-1", THREAD[:5])
    second = stored("across-2", THREAD[5:])
    ids = [first.pk, second.pk]
    for alpha in (0.0, 0.9, 1.0):
        for query in QUERIES:
            got = turns_search(session_ids=ids, query=query, alpha=alpha, top_k=6)
            expected = in_sql(first, query, alpha=alpha, top_k=6, session_ids=ids)
            assert same_ranking(got, expected), (alpha, query)
            assert [h.session_name for h in got.docs] == [h.session_name for h in expected.docs]


def test_a_client_supplied_vector_is_ranked_as_the_sql_does(stored, in_sql):
    session = stored("client-vector", THREAD)
    for query in QUERIES[:4]:
        # A client's own vector: another model's, here the model's for a paraphrase.
        vector = embeddings.query_embed(f"about {query}").tolist()
        for alpha in (0.0, 0.5, 0.9, 1.0):
            got = search(session, query, alpha=alpha, embedding=vector)
            assert got.served_by == "index"
            assert same_ranking(got, in_sql(session, query, alpha=alpha, embedding=vector))
    # The index now holds the plain vectors too, and still serves text queries as before.
    for query in QUERIES[:4]:
        assert same_ranking(search(session, query), in_sql(session, query))


def test_a_client_vector_of_huge_values_ranks_as_its_direction(stored):
    session = stored("huge", THREAD)
    direction = embeddings.query_embed("the refund of the second debit")
    huge = (direction / abs(direction).max() * 3e38).tolist()  # finite float32 values
    got = search(session, "refund", alpha=1.0, embedding=huge)
    assert [h.id for h in got.docs] == [
        h.id for h in search(session, "refund", alpha=1.0, embedding=direction.tolist()).docs
    ]
    assert got.docs[0].score == pytest.approx(
        search(session, "refund", alpha=1.0, embedding=direction.tolist()).docs[0].score, abs=1e-5
    )
