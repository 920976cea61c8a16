"""Ranking on crafted sessions, with the real model: what each signal alone finds."""

import pytest

from sessions_app import embeddings
from sessions_app.services.search import Ranking, turns_search

PLAIN = Ranking(context_weight=0.0)


def ids(session, query, *, alpha, ranking=None, top_k=5):
    options = {"ranking": ranking} if ranking else {}
    result = turns_search(
        session_ids=[session.pk], query=query, top_k=top_k, alpha=alpha, **options
    )
    return [hit.id for hit in result.docs]


def test_an_id_only_keyword_ranking_finds(stored):
    session = stored(
        "ids",
        [
            ("bot", "Case CS-448120 is open for the duplicate payment."),
            ("bot", "Case CS-448210 was closed after the refund was paid."),
            ("bot", "Case CS-484120 covers the router that reboots at night."),
            ("bot", "Your refund case is being reviewed by the billing team."),
        ],
    )
    # To the model the three ids look alike; BM25 weighs the rare token.
    assert ids(session, "CS-448210", alpha=0.0)[0] == "t2"
    assert ids(session, "CS-448210", alpha=1.0)[0] != "t2"
    assert ids(session, "CS-448210", alpha=0.9)[0] == "t2"


def test_a_paraphrase_only_semantic_ranking_finds(stored):
    session = stored(
        "paraphrase",
        [
            ("customer", "I was billed twice for the same month."),
            ("customer", "My internet connection keeps dropping every evening."),
            ("bot", "An engineer visit costs nothing under your plan."),
        ],
    )
    assert ids(session, "wifi stops working at night", alpha=0.0) == []
    assert ids(session, "wifi stops working at night", alpha=1.0)[0] == "t2"
    assert ids(session, "wifi stops working at night", alpha=0.9)[0] == "t2"


CARD_CALL = [
    ("bot", "Thanks for calling. Can you confirm the last four digits of the card on the account?"),
    ("customer", "It ends in 4417."),
    ("bot", "Thanks. I can see two debits against invoice INV-20931 on 3 March."),
    ("customer", "So can you put one back? My rent goes out on Friday."),
    ("bot", "I've flagged the second debit; a person will refund it within five days."),
    ("customer", "The router also reboots itself every night."),
    ("bot", "Your replacement reference is RP-30021 and the return label RL-4471."),
    ("customer", "I moved house last month, please update my address."),
]


def test_a_short_answer_is_found_only_through_its_context(stored):
    session = stored("short-answer", CARD_CALL)
    question = "which card does the customer pay with"
    plain = ids(session, question, alpha=1.0, ranking=PLAIN, top_k=8)
    assert plain[-1] == "t2"  # alone, "It ends in 4417." means nothing
    # Its context vector reads the question before it, and lifts it; with the default's
    # answer lift it ranks next to that question.
    assert ids(session, question, alpha=1.0, top_k=8).index("t2") < plain.index("t2") - 1
    assert ids(session, question, alpha=0.9, top_k=2) == ["t1", "t2"]


def test_a_client_query_vector_is_scored_against_plain_vectors_only(stored):
    # Context vectors come from the server's model; a client's vector may not.
    session = stored("client-vector", CARD_CALL)
    query = embeddings.query_embed("which card does the customer pay with").tolist()
    with_vector = turns_search(
        session_ids=[session.pk], query="card", top_k=8, alpha=1.0, embedding=query
    )
    plain = turns_search(
        session_ids=[session.pk], query="card", top_k=8, alpha=1.0, embedding=query, ranking=PLAIN
    )
    assert [h.score for h in with_vector.docs] == pytest.approx(
        [h.score for h in plain.docs], abs=1e-6
    )
