"""What a search query asks about, read from its words: the signals hybrid search adds
to the blend (services/search.py, `Ranking`).

A specialist's follow-ups often share no word with their answer: "what did the bot
promise" is answered by "I've booked a callback for 3 p.m.", "claim number" by a turn
holding "CLM-77120". The turns already carry what answers them, stored once when
written: the speaker's role (metadata) and the commitments and facts the brief
extracted (Turn.extracted, services/brief_extract.py). So the query is read for
- the role it names ("the bot", "the agent", "the customer" or "she"), first named first;
- whether it asks what was promised or done;
- which kinds of fact it asks for (an amount, an id, a phone number, an email, a date);
- whether it asks why (answered by a turn that states a cause: "because", "due to").
Cheap: a few regular expressions over the query, nothing re-embedded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Roles as Turn.metadata["role"] spells them, and the words a question names them by.
_ROLES = {
    "bot": re.compile(r"\bbots?\b|\bassistant\b", re.IGNORECASE),
    "agent": re.compile(
        r"\bagents?\b|\bspecialists?\b|\breps?\b|\bhandlers?\b|\bteam\b", re.IGNORECASE
    ),
    # A specialist names bots and agents by role and the customer by "she" or "he" as well.
    "customer": re.compile(
        r"\bcustomers?(?:'s)?\b|\bcallers?\b|\bcardholders?\b|\b(?:she|he|her|his|him|hers)\b",
        re.IGNORECASE,
    ),
}
_COMMITMENT = re.compile(
    r"\b(?:promis\w*|commit\w*|arrang\w*|offer\w*|agree\w*|guarantee\w*)\b"
    r"|\bwhat\s+(?:did|has|have|will)\b.{0,40}\b(?:do|done)\b"
    r"|\bwould\s+happen\s+next\b|\bnext\s+steps?\b",
    re.IGNORECASE,
)
# Fact kinds as brief_extract.FACT_KINDS names them, and the words that ask for them.
_FACT_KINDS = (
    (
        ("amount",),
        re.compile(r"\bhow\s+much\b|\bcost\b|\bprice\b|\bamount\b|\bfee\b|\btotal\b", re.I),
    ),
    (
        ("order", "case", "ticket", "invoice"),
        re.compile(
            r"\b(?:id|reference|ref)\b"
            r"|\b(?:case|ticket|claim|order|invoice|dispute|tracking|booking)\s+(?:number|no)\b",
            re.IGNORECASE,
        ),
    ),
    (
        ("phone",),
        re.compile(
            r"\bphone\b|\bmobile\b|\bfax\b|\b(?:callback|contact)\s+number\b"
            r"|\bnumber\s+to\s+(?:reach|call)\b",
            re.IGNORECASE,
        ),
    ),
    (("email",), re.compile(r"\be-?mail\s+(?:address|on)\b", re.IGNORECASE)),
    (("date",), re.compile(r"\bwhen\b|\b(?:what|which)\s+(?:day|date|time)\b|\bdeadline\b", re.I)),
)
_WHY = re.compile(
    r"\bwhy\b|\bhow\s+come\b|\bwhat\s+(?:caused|causes|is\s+causing)\b|\breasons?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QueryIntent:
    role: str | None  # the role the query names first, as metadata spells it
    commitment: bool  # asks what was promised or done
    fact_kinds: tuple[str, ...]  # the kinds of fact it asks for
    why: bool = False  # asks for a reason


def query_intent_read(*, query: str) -> QueryIntent:
    named = [(match.start(), role) for role, p in _ROLES.items() if (match := p.search(query))]
    kinds = tuple(kind for group, pattern in _FACT_KINDS if pattern.search(query) for kind in group)
    return QueryIntent(
        role=min(named)[1] if named else None,
        commitment=bool(_COMMITMENT.search(query)),
        fact_kinds=kinds,
        why=bool(_WHY.search(query)),
    )
