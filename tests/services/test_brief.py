"""The handoff brief on fixed sessions: its facts, promises and path, each citing its turn."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from sessions_app.actors import Actor
from sessions_app.models import Session
from sessions_app.services import brief as brief_module
from sessions_app.services.brief import brief_build, session_brief
from sessions_app.services.brief_extract import commitment_extract, facts_extract
from sessions_app.services.handoffs import session_claim, session_push
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_delete, turns_upsert
from tests.servers import free_port

# A duplicate charge that travelled voice → chat → email, with two handoffs.
THREAD = [
    ("v1", "voice", "bot", "voice-bot", "iphone", "Thanks for calling Acme. How can I help?"),
    (
        "v2",
        "voice",
        "customer",
        "Jo Smith",
        "iphone",
        "I was charged twice for order #A-88231, two charges of $49.99 on Nov 3rd.",
    ),
    ("v3", "voice", "bot", "voice-bot", "iphone", "I can see both charges. Is it the Visa?"),
    ("v4", "voice", "customer", "Jo Smith", "iphone", "Yes, it ends in 4417."),
    (
        "v5",
        "voice",
        "bot",
        "voice-bot",
        "iphone",
        "I've opened case 00123456 for the duplicate charge. I'll text you a chat link.",
    ),
    ("c1", "chat", "customer", "Jo Smith", "web", "Hi, I'm on the chat now. What happens next?"),
    (
        "c2",
        "chat",
        "bot",
        "chat-bot",
        "web",
        "Your refund of $49.99 will be processed within 3-5 business days. "
        "Do you also want a receipt?",
    ),
    (
        "c3",
        "chat",
        "customer",
        "Jo Smith",
        "web",
        "Email it to jo.smith@example.com. And call me on (415) 555-0134 if anything changes.",
    ),
    ("c4", "chat", "bot", "chat-bot", "web", "Could you confirm your billing address?"),
    (
        "e1",
        "email",
        "customer",
        "Jo Smith",
        "laptop",
        "Invoice INV-2026-0042 still shows both charges and nobody called back. I want a manager.",
    ),
]


def bot(project, name="voice-bot"):
    return Actor.for_key(project.api_keys.get(), agent=name)


def add(session, project, rows):
    turns_upsert(
        session=session,
        docs=[
            DocInput(
                id=doc_id,
                text=text,
                metadata={"channel": ch, "role": role, "author": author, "device": device},
            )
            for doc_id, ch, role, author, device, text in rows
        ],
        actor=bot(project),
    )


@pytest.fixture
def charged_twice(make_project) -> Session:
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=bot(project), channel="voice")
    add(session, project, THREAD[:5])
    session_push(
        session=session,
        actor=bot(project),
        to_kind="bot",
        to_target="chat-bot",
        reason="moving to chat",
        from_agent="voice-bot",
        from_channel="voice",
    )
    add(session, project, THREAD[5:])
    session_push(
        session=session,
        actor=bot(project, "email-bot"),
        to_kind="humans",
        reason="duplicate charge not refunded yet, wants a manager",
        from_agent="email-bot",
        from_channel="email",
    )
    session.refresh_from_db()
    return session


def test_the_brief_cites_the_escalation_and_the_customers_own_words(charged_twice):
    brief = brief_build(session=charged_twice)

    assert brief.escalation is not None
    assert brief.escalation.reason == "duplicate charge not refunded yet, wants a manager"
    assert (brief.escalation.turn, brief.escalation.seq) == ("e1", 10)
    assert brief.problem is not None
    assert brief.problem.method == "semantic"
    assert brief.problem.turn == "e1"
    assert brief.problem.text.startswith("Invoice INV-2026-0042 still shows both charges")
    assert brief.problem.author == "Jo Smith"


def test_every_key_fact_is_found_once_citing_where_it_was_said(charged_twice):
    brief = brief_build(session=charged_twice)
    facts = {(f.kind, f.key): (f.value, f.turn, f.turns) for f in brief.facts}

    assert facts[("order", "A-88231")] == ("A-88231", "v2", ["v2"])
    assert facts[("amount", "USD 49.99")] == ("$49.99", "v2", ["v2", "c2"])
    assert facts[("date", "11-03")][:2] == ("Nov 3rd", "v2")
    assert facts[("case", "00123456")][1] == "v5"
    assert facts[("date", "within 3-5 business days")][1] == "c2"
    assert facts[("email", "jo.smith@example.com")][1] == "c3"
    assert facts[("phone", "+14155550134")][:2] == ("(415) 555-0134", "c3")
    assert facts[("invoice", "INV-2026-0042")][1] == "e1"
    # "It ends in 4417." is not a phone number, an amount or an id.
    assert not any("4417" in f.value for f in brief.facts)


def test_promises_are_what_bots_said_they_did_or_will_do_never_questions(charged_twice):
    brief = brief_build(session=charged_twice)
    promises = {p.turn: p for p in brief.promises}

    assert set(promises) == {"v5", "c2"}
    assert promises["v5"].text == (
        "I've opened case 00123456 for the duplicate charge. I'll text you a chat link."
    )
    assert promises["c2"].text == (
        "Your refund of $49.99 will be processed within 3-5 business days."
    )
    assert "refund" in promises["c2"].topics
    assert promises["c2"].author == "chat-bot"


def test_the_path_lists_channels_devices_and_handoffs_with_their_turns(charged_twice):
    path = brief_build(session=charged_twice).path

    assert path.channels == ["voice", "chat", "email"]
    assert [(s.channel, s.devices, s.turn, s.last_turn, s.turns) for s in path.segments] == [
        ("voice", ["iphone"], "v1", "v5", 5),
        ("chat", ["web"], "c1", "c4", 4),
        ("email", ["laptop"], "e1", "e1", 1),
    ]
    assert [(h.to_kind, h.reason, h.turn) for h in path.handoffs] == [
        ("bot", "moving to chat", "v5"),
        ("humans", "duplicate charge not refunded yet, wants a manager", "e1"),
    ]
    assert path.handoffs[0].waited_seconds is None
    assert path.handoffs[1].waited_seconds is not None
    assert path.waiting_since is not None
    assert path.waiting_seconds is not None and path.waiting_seconds >= 0


def test_a_claimed_escalation_stops_waiting(charged_twice, make_user):
    ana = make_user("ana", charged_twice.project)
    session_claim(session=charged_twice, user=ana)
    charged_twice.refresh_from_db()
    brief = session_brief(session=charged_twice)

    assert brief.status == "held"
    assert brief.holder == "ana"
    assert brief.path.waiting_seconds is None
    assert brief.path.handoffs[-1].claimed_by == "ana"


def test_the_cached_brief_follows_every_change_to_the_session(charged_twice):
    first = session_brief(session=charged_twice)
    assert session_brief(session=charged_twice) == first

    project = charged_twice.project
    add(charged_twice, project, [("e2", "email", "bot", "email-bot", "", "Refund sent: $10.00")])
    charged_twice.refresh_from_db()
    after_add = session_brief(session=charged_twice)
    assert ("amount", "USD 10.00") in {(f.kind, f.key) for f in after_add.facts}

    turns_delete(session=charged_twice, doc_ids=["e2"], actor=bot(project))
    charged_twice.refresh_from_db()
    after_delete = session_brief(session=charged_twice)
    assert ("amount", "USD 10.00") not in {(f.kind, f.key) for f in after_delete.facts}


def test_a_session_without_escalation_or_customer_turns(make_project):
    project, _ = make_project()
    empty, _ = session_open(project=project, name="empty", actor=bot(project))
    brief = brief_build(session=empty)
    assert (brief.escalation, brief.problem, brief.promises, brief.facts) == (None, None, [], [])
    assert brief.path.segments == [] and brief.path.handoffs == []

    add(empty, project, [("t1", "sms", "customer", "Al", "", "Hi"), THREAD[1]])
    brief = brief_build(session=empty)
    assert brief.problem is not None
    assert (brief.problem.turn, brief.problem.method) == ("v2", "first_customer_turn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Refund of €1,200.00 on 2026-11-25", [("amount", "EUR 1200.00"), ("date", "2026-11-25")]),
        (
            "Ticket TKT-9921, call +44 20 7946 0958",
            [("ticket", "TKT-9921"), ("phone", "+442079460958")],
        ),
        ("my order number is 55120-B", [("order", "55120-B")]),
        ("20 dollars, due 12/03/26", [("amount", "USD 20.00"), ("date", "2026-12-03")]),
        (
            "Your case is CS-4410; we'll call next Tuesday at 3pm",
            [("case", "CS-4410"), ("date", "next tuesday at 3pm")],
        ),
        ("Call me at 415-555-2671, it ends in 4417", [("phone", "+14155552671")]),
        ("in order to help you", []),
        ("use my work mobile 07700 900412 please", [("phone", "+447700900412")]),
        ("6038 4410 9927 1185", []),
        ("I've raised VB-31877 for an agent", [("case", "VB-31877")]),
        ("Booking reference LM4K9P is unchanged", [("order", "LM4K9P")]),
        ("a known fault, reference NF-2207. COVID-19 rules apply", [("case", "NF-2207")]),
        (
            "scheduled for Tue 14 May between 7am and 7pm",
            [("date", "05-14"), ("date", "7am"), ("date", "7pm")],
        ),
        (
            "extended by 72 hours, before the demo at 2pm today",
            [("date", "by 72 hours"), ("date", "2pm today")],
        ),
        ("collected on the 28th, not the 2nd time", [("date", "28th")]),
        ("My order was 250 dollars and never came", [("amount", "USD 250.00")]),
        ("The bill is 120 euros", [("amount", "EUR 120.00")]),
    ],
)
def test_facts_in_one_text(text, expected):
    assert [(f.kind, f.key) for f in facts_extract(text)] == expected


@pytest.mark.parametrize(
    ("text", "commits"),
    [
        ("I've credited $20 to your account.", True),
        ("We will send a replacement tomorrow.", True),
        ("A technician is booked for Friday.", True),
        ("You'll receive an email confirmation shortly.", True),
        ("The fee has been waived.", True),
        ("Would you like me to issue a refund?", False),
        ("We will need your order number.", False),
        ("I'll be happy to help with that.", False),
        ("I can see both charges.", False),
        ("A specialist will call you to verify you by video.", True),
        ("I've asked the team to review honouring the 25%.", True),
        ("I can send you a loan laptop while we decide.", True),
        ("I can't override prices.", False),
        ("We've received a chargeback on order SI-41409.", False),
        ("I will not be able to change that.", False),
        ("We have declined the refund.", False),
        ("We've denied the claim and rejected the appeal.", False),
        ("I will be honest, we cannot refund this.", False),
    ],
)
def test_commitments(text, commits):
    assert (commitment_extract(text) is not None) is commits


def test_facts_are_extracted_when_a_turn_is_stored_and_again_when_its_text_changes(
    charged_twice,
):
    turn = charged_twice.turns.get(doc_id="c3")
    assert [kind for kind, _, _ in turn.extracted["facts"]] == ["email", "phone"]
    project = charged_twice.project
    add(charged_twice, project, [("c3", "chat", "customer", "Jo", "web", "Ticket TKT-77")])
    turn.refresh_from_db()
    assert turn.extracted == {"facts": [["ticket", "TKT-77", "TKT-77"]]}


def test_turns_stored_without_extraction_are_extracted_by_extract_pending(charged_twice):
    charged_twice.turns.update(extracted=None)
    assert brief_build(session=charged_twice).facts == []

    out = StringIO()
    call_command("extract_pending", stdout=out)
    assert out.getvalue() == "Extracted 10 turns.\n"
    facts = {(f.kind, f.key) for f in brief_build(session=charged_twice).facts}
    assert ("invoice", "INV-2026-0042") in facts
    assert ("phone", "+14155550134") in facts
    assert not charged_twice.turns.filter(extracted__isnull=True).exists()


def test_extract_pending_all_extracts_every_turn_again(charged_twice):
    charged_twice.turns.filter(doc_id="c3").update(extracted={})
    out = StringIO()
    call_command("extract_pending", "--all", stdout=out)
    assert out.getvalue() == "Extracted 10 turns.\n"
    assert charged_twice.turns.get(doc_id="c3").extracted["facts"][0][0] == "email"


def test_a_long_session_is_read_from_its_first_and_latest_turns(charged_twice, monkeypatch):
    monkeypatch.setattr(brief_module, "WINDOW_FIRST", 2)
    monkeypatch.setattr(brief_module, "WINDOW_LATEST", 3)
    brief = brief_build(session=charged_twice)

    assert brief.partial
    # v1, v2 (seq 1-2) and c3, c4, e1 (seq 8-10) are read; v5 and c2 (seq 5, 7) are not.
    assert {f.turn for f in brief.facts} == {"v2", "c3", "e1"}
    assert brief.promises == []
    assert [(s.turn, s.last_turn) for s in brief.path.segments] == [
        ("v1", "v2"),
        ("c3", "c4"),
        ("e1", "e1"),
    ]


def test_the_brief_is_built_when_the_cache_fails(charged_twice):
    """The cache is an optimisation: with Redis down the brief is built every time."""
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(CACHES=dead_redis):
        brief = session_brief(session=charged_twice)
    assert brief.problem is not None and brief.problem.turn == "e1"
    assert ("order", "A-88231") in {(f.kind, f.key) for f in brief.facts}
