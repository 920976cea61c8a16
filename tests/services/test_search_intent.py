"""The query-intent signals of hybrid search (services/query_intent.py), each alone on a
crafted session with the real model: without it the answer is not first, with it it is."""

import dataclasses
import importlib
from typing import Any

from django.apps import apps

from sessions_app.services.brief_extract import turn_signals
from sessions_app.services.query_intent import query_intent_read
from sessions_app.services.search import Ranking, turns_search

SIGNALS = ("role_boost", "commitment_boost", "fact_boost", "why_boost", "reply_share")
OFF: dict[str, Any] = {signal: 0.0 for signal in SIGNALS}
NONE = Ranking(**OFF)
DEFAULT = Ranking()


def alone(signal):
    """The default blend with this one query signal, at its default weight."""
    return dataclasses.replace(NONE, **{signal: getattr(DEFAULT, signal)})


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
    for asks_a_date in ("when is the visit", "what day was it moved to", "which day did he pick"):
        assert query_intent_read(query=asks_a_date).fact_kinds == ("date",)
    # A specialist calls the customer "she" or "he"; the role named first still wins.
    assert query_intent_read(query="did she accept the offer").role == "customer"
    assert query_intent_read(query="what did the bot tell him").role == "bot"
    assert query_intent_read(query="why was the dispute lost").why
    assert query_intent_read(query="what was the reason given").why
    assert not query_intent_read(query="what was the dispute about").why


def test_turns_are_read_for_a_stated_cause_and_a_question_or_request():
    assert turn_signals("It was closed because no evidence arrived in time.") == {"cause": True}
    assert turn_signals("The outage was caused by a cut cable.") == {"cause": True}
    assert turn_signals("What\u2019s the postcode?") == {"asks": True}
    assert turn_signals("Please reply with the 16-digit card number.") == {"asks": True}
    assert turn_signals("Next flight is at 07:05. Reply YES to confirm.") == {"asks": True}
    assert turn_signals("Reply here or use web chat to continue.") == {}
    assert turn_signals("Since Monday the router has been offline.") == {}


ROLES = [
    ("customer", "Where is my parcel?"),
    ("bot", "The tracking says it is held at the local depot."),
    ("customer", "I need it before my trip."),
]


def test_a_role_named_in_the_query_lifts_that_roles_turns(stored):
    session = stored("roles", ROLES)
    question = "what did the bot say about the parcel"
    role_only = alone("role_boost")
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
    question = "what was promised"
    commitment_only = alone("commitment_boost")
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
    fact_only = alone("fact_boost")
    assert top(session, question, NONE)[0] != "t3"
    assert top(session, question, fact_only)[0] == "t3"
    assert top(session, question, DEFAULT)[0] == "t3"


PRONOUNS = [
    ("bot", "We can refund the deposit or keep it as credit for a later stay."),
    ("customer", "Credit is fine, I'll be back in the spring."),
    ("bot", "Keeping the deposit as credit is usually the better deal."),
]


def test_she_or_he_in_a_question_lifts_the_customers_turns(stored):
    session = stored("pronouns", PRONOUNS)
    question = "does he want credit or a refund"
    assert top(session, question, NONE)[0] != "t2"
    assert top(session, question, alone("role_boost"))[0] == "t2"


CAUSES = [
    ("customer", "My parcel never came and the tracking page says the delivery failed."),
    ("bot", "I'm sorry. I can see the delivery failed on Tuesday."),
    ("bot", "It could not go out because the van broke down on the way."),
    ("customer", "When will it come now?"),
]


def test_a_why_question_lifts_turns_that_state_a_cause(stored):
    session = stored("causes", CAUSES)
    question = "why did the delivery fail"
    assert top(session, question, NONE)[0] != "t3"
    assert top(session, question, alone("why_boost"))[0] == "t3"
    assert top(session, question, DEFAULT)[0] == "t3"
    # A question that does not ask why is not moved by it.
    other = "when did the delivery fail"
    assert top(session, other, alone("why_boost")) == top(session, other, NONE)


ANSWERS = [
    ("customer", "Hi, which area code do you cover?"),
    ("customer", "My broadband has been down since yesterday morning."),
    ("bot", "Let me check for faults in your area. Can I have your postcode?"),
    ("customer", "B15 2TT."),
    ("bot", "Thanks. Engineers are working on a fault in your postal district."),
    ("customer", "OK, how long will it take?"),
]


def test_the_answer_to_the_best_matching_question_is_lifted_next_to_it(stored):
    session = stored("answers", ANSWERS)
    assert top(session, "postcode", NONE)[:2] == ["t3", "t1"]
    assert "t4" not in top(session, "postcode", NONE)
    assert top(session, "postcode", alone("reply_share")) == ["t3", "t4", "t1"]
    # The default ranking (the in-process index serves it) lifts it the same way.
    assert top(session, "postcode", DEFAULT)[:2] == ["t3", "t4"]


def test_only_an_answer_by_another_speaker_to_a_turn_that_asks_is_lifted(stored):
    # The best match asks nothing: the turn after it gains nothing.
    told = [
        (role, text.replace("Can I have your postcode?", "I have your postcode."))
        for role, text in ANSWERS
    ]
    session = stored("told", told)
    assert top(session, "postcode", alone("reply_share")) == top(session, "postcode", NONE)
    # The same speaker goes on: no answer to lift.
    same = [
        ("bot", text) if index == 3 else (role, text) for index, (role, text) in enumerate(ANSWERS)
    ]
    session = stored("same-speaker", same)
    assert top(session, "postcode", alone("reply_share")) == top(session, "postcode", NONE)


def test_turns_stored_before_the_signals_get_them_from_the_migration(stored):
    session = stored("before", CAUSES + ANSWERS)
    session.turns.update(extracted={})
    migration = importlib.import_module("sessions_app.migrations.0016_turn_search_signals")
    migration.turns_signal(apps, None)
    extracted = dict(session.turns.values_list("doc_id", "extracted"))
    assert extracted["t3"] == {"cause": True}
    assert extracted["t7"] == {"asks": True}
    assert extracted["t6"] == {}
