"""The query-intent signals of hybrid search (services/query_intent.py), each alone on a
crafted session with the real model: without it the answer is not first, with it it is."""

from sessions_app.services.query_intent import query_intent_read
from sessions_app.services.search import Ranking, turns_search

NONE = Ranking(role_boost=0.0, commitment_boost=0.0, fact_boost=0.0)
DEFAULT = Ranking()


def top(session, query, ranking, *, alpha=0.9):
    result = turns_search(
        session_ids=[session.pk], query=query, top_k=3, alpha=alpha, ranking=ranking
    )
    return [hit.id for hit in result.docs]


def test_the_query_is_read_for_role_commitment_and_fact_kinds():
    intent = query_intent_read(query="What did the bot say the agent would promise?")
    assert intent.role == "bot"  # the role named first
    assert intent.commitment
    assert intent.fact_kinds == ()
    plain = query_intent_read(query="why is the customer unhappy")
    assert (plain.role, plain.commitment, plain.fact_kinds) == ("customer", False, ())
    assert query_intent_read(query="claim number").fact_kinds == (
        "order",
        "case",
        "ticket",
        "invoice",
    )
    assert query_intent_read(query="how much was charged").fact_kinds == ("amount",)


ROLES = [
    ("customer", "Where is my parcel?"),
    ("bot", "The tracking says it is held at the local depot."),
    ("customer", "I need it before my trip."),
]


def test_a_role_named_in_the_query_lifts_that_roles_turns(stored):
    session = stored("roles", ROLES)
    question = "what did the bot say about the parcel"
    role_only = Ranking(commitment_boost=0.0, fact_boost=0.0)
    assert top(session, question, NONE)[0] != "t2"
    assert top(session, question, role_only)[0] == "t2"
    # alpha keeps its meaning: a pure ranking has no intent signal.
    assert top(session, question, role_only, alpha=1.0) == top(session, question, NONE, alpha=1.0)


PROMISES = [
    ("customer", "I was charged twice for March and I want that money returned."),
    ("agent", "Let me look at the March bill and the payments on it."),
    ("agent", "I have issued a refund of $42.10 to your card."),
    ("customer", "How long does the money take to come back?"),
]


def test_a_question_about_what_was_promised_lifts_turns_with_a_commitment(stored):
    session = stored("promises", PROMISES)
    question = "what was promised about the money"
    commitment_only = Ranking(role_boost=0.0, fact_boost=0.0)
    assert top(session, question, NONE)[0] != "t3"
    assert top(session, question, commitment_only)[0] == "t3"


FACTS = [
    ("customer", "Water came through the kitchen ceiling and I want to make a claim."),
    ("bot", "I'm sorry to hear that. Claims for water damage are handled by our home team."),
    ("bot", "That's logged as CLM-77120."),
    ("customer", "Will someone come and look at the claim this week?"),
]


def test_a_question_for_a_kind_of_fact_lifts_turns_holding_one(stored):
    session = stored("facts", FACTS)
    question = "claim number"
    fact_only = Ranking(role_boost=0.0, commitment_boost=0.0)
    assert top(session, question, NONE)[0] != "t3"
    assert top(session, question, fact_only)[0] == "t3"
    assert top(session, question, DEFAULT)[0] == "t3"
