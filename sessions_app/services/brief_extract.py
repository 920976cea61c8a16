"""What the handoff brief pulls out of turn texts, with no model: key facts and commitments.

Pure functions over text, so they are cheap and testable on their own. Facts
are amounts, order / case / ticket / invoice numbers, dates, email addresses
and phone numbers (parsed and validated by Google's libphonenumber port,
`phonenumbers`). A commitment is a sentence in which the bot or agent says
what it did or will do ("I've issued a refund", "we'll call you back on
Friday"); questions are never commitments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.conf import settings

FACT_KINDS = ("amount", "order", "case", "ticket", "invoice", "date", "email", "phone")
MIN_PHONE_DIGITS = 9  # "4417" and "49.99" are possible numbers somewhere; never phones here
MAX_COMMITMENT_CHARS = 600  # of the committing sentences kept; the thread has the rest


@dataclass(frozen=True)
class Fact:
    kind: str
    value: str  # as written in the turn
    key: str  # normalised, to tell one fact from another: "USD 49.99", "+14155550134"
    start: int


# --- identifiers: "order #A-1234", "case number 00123456", "claim HC-774091", "NF-2207" --------

# The word before an id says what it is; "reference" alone is a case.
_ID_WORDS = {
    "order": "order",
    "orders": "order",
    "booking": "order",
    "reservation": "order",
    "purchase": "order",
    "confirmation": "order",
    "case": "case",
    "claim": "case",
    "dispute": "case",
    "request": "case",
    "repair": "case",
    "complaint": "case",
    "investigation": "case",
    "reference": "case",
    "ref": "case",
    "ticket": "ticket",
    "incident": "ticket",
    "invoice": "invoice",
    "inv": "invoice",
    "bill": "invoice",
}
_ID_WORD = "|".join(sorted(_ID_WORDS, key=len, reverse=True))
# A labelled id: the word, a few filler words ("number", "reference is", "for this"), then a
# token with a digit in it.
_LABELLED_ID = re.compile(
    rf"\b(?P<word>{_ID_WORD})\b"
    r"(?:\s*(?:number|num|no\.?|id|ref(?:erence)?|code|is|was|for|this|it's|it\s+is|:|#|,)\s*){0,3}"
    r"#?\s*(?P<id>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,40})\b"
    # "my order was 250 dollars" is an amount, not order 250.
    r"(?!\s?(?:USD|EUR|GBP|CAD|AUD|dollars?|bucks|euros?|pounds?)\b)",
    re.IGNORECASE,
)
# An id on its own: capitals and digits joined by dashes, with three digits or more
# (ORD-88231, INV-2026-0042, NF-2207, A-55204; not COVID-19).
_BARE_ID = re.compile(r"#?\b(?P<id>(?=(?:[A-Z-]*\d){3})[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\b")
_PREFIXES = {
    "ord": "order",
    "order": "order",
    "po": "order",
    "so": "order",
    "case": "case",
    "cs": "case",
    "rma": "case",
    "tkt": "ticket",
    "ticket": "ticket",
    "inc": "ticket",
    "sr": "ticket",
    "inv": "invoice",
    "invoice": "invoice",
}
# The nearest id word before a bare id, within its sentence.
_WORD_BEFORE = re.compile(rf"\b({_ID_WORD})\b(?=[^.!?]*$)", re.IGNORECASE)


def _bare_id_kind(text: str, start: int, value: str) -> str:
    words = _WORD_BEFORE.findall(text[max(0, start - 60) : start])
    if words:
        return _ID_WORDS[words[-1].lower()]
    return _PREFIXES.get(value.split("-", 1)[0].lower(), "case")


# --- amounts: "$49.99", "€1,200", "49.99 USD", "20 dollars" -------------------------------

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CODES = {
    "usd": "USD",
    "eur": "EUR",
    "gbp": "GBP",
    "cad": "CAD",
    "aud": "AUD",
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?:(?P<code1>USD|EUR|GBP|CAD|AUD)\s?|(?P<symbol>[$€£¥₹])\s?)(?P<n1>{_NUMBER})\b"
    rf"|\b(?P<n2>{_NUMBER})\s?(?P<code2>USD|EUR|GBP|CAD|AUD|dollars?|bucks|euros?|pounds?)\b",
    re.IGNORECASE,
)

# --- dates: "2026-11-25", "11/25", "November 25th", "25 Nov 2026", "Friday", "tomorrow",
# "within 3-5 business days" ---------------------------------------------------------------

_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_WEEKDAY = (
    r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
)
_CLOCK = r"\d{1,2}(?::\d{2})?\s?[ap]\.?m\b\.?"
# "at 3pm", "6pm", "at 14:12", "morning": what may follow a day.
_TIME = (
    rf"(?:,?\s+(?:(?:at|by|before|after|from)\s+)?(?:{_CLOCK}|\d{{1,2}}:\d{{2}}|noon|midday)"
    r"|\s+(?:morning|afternoon|evening|night))?"
)
_UNITS = r"(?:business\s+|working\s+)?(?:hours?|days?|weeks?)"
_DATE = re.compile(
    rf"\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<numeric>(?:0?[1-9]|1[0-2])/(?:[12]\d|3[01]|0?[1-9])(?:/(?:\d{{4}}|\d{{2}}))?)\b"
    rf"|\b(?:{_WEEKDAY}\.?,?\s+)?(?P<md>{_MONTH}\s+{_DAY}(?:,?\s+\d{{4}})?)\b{_TIME}"
    rf"|\b(?:{_WEEKDAY}\.?,?\s+)?(?P<dm>{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?)\b{_TIME}"
    rf"|\b(?P<weekday>(?:(?:next|this|last)\s+)?{_WEEKDAY})\b{_TIME}"
    rf"|\b(?P<relative>today|tomorrow|yesterday|tonight|end of (?:the )?(?:day|week|month)"
    rf"|next (?:week|month))\b{_TIME}"
    rf"|\b(?P<clock>{_CLOCK}(?:\s+(?:today|tomorrow|tonight))?)"
    rf"|\bthe\s+(?P<ordinal>(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th))\b"
    r"(?!\s+(?:time|floor|attempt|try|one|item|call|person|line|page))"
    rf"|\b(?P<span>(?:within|in|takes?|up\s+to|by|for)\s+(?:one|two|three|five|seven|ten|\d+)"
    rf"(?:\s*(?:-|\u2013|to)\s*\d+)?\s+(?:{_UNITS}|minutes)"
    rf"|\d+(?:\s*(?:-|\u2013|to)\s*\d+)?\s+{_UNITS})\b",
    re.IGNORECASE,
)

# --- email addresses, phone numbers --------------------------------------------------------

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Worth handing to libphonenumber: seven digits or more, with the usual separators.
_PHONE_CANDIDATE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
_DIGITS_AROUND = re.compile(r"\d[\s.-]?$")
_DIGITS_AFTER = re.compile(r"[\s.-]?\d")
_PHONE_CUE = re.compile(
    r"\b(?:call|phone|mobile|cell|landline|number|tel|text|sms|whatsapp|reach|ring)\b|^\W*\+?\d",
    re.IGNORECASE,
)


def facts_extract(text: str) -> list[Fact]:
    """Every fact in one text, in the order written. Ids, emails and dates are taken first so
    their digits are not read again as phone numbers or amounts."""
    found: list[Fact] = []
    masked = text

    def take(kind: str, value: str, key: str, start: int, end: int) -> None:
        nonlocal masked
        found.append(Fact(kind=kind, value=value, key=key, start=start))
        masked = masked[:start] + " " * (end - start) + masked[end:]

    for match in _LABELLED_ID.finditer(text):
        kind = _ID_WORDS[match["word"].lower()]
        value = match["id"]
        take(kind, value, value.upper(), match.start("id"), match.end("id"))
    for match in _BARE_ID.finditer(masked):
        value = match["id"]
        take(_bare_id_kind(text, match.start(), value), value, value, match.start(), match.end())
    for match in _EMAIL.finditer(masked):
        take("email", match[0], match[0].lower(), match.start(), match.end())
    for match in _DATE.finditer(masked):
        value = match[0].strip().rstrip(".,;:")
        take("date", value, _date_key(match), match.start(), match.start() + len(value))
    if _PHONE_CANDIDATE.search(masked):
        for phone in _phones(masked):
            take("phone", *phone)
    for match in _AMOUNT.finditer(masked):
        take("amount", match[0].strip(), _amount_key(match), match.start(), match.end())
    found.sort(key=lambda fact: fact.start)
    return found


def _phones(text: str) -> list[tuple[str, str, int, int]]:
    """Numbers valid in one of MOSS_BRIEF_PHONE_REGIONS (or international); where the text
    says it is a number ("call me on", "mobile"), any number of a possible length."""
    leniency = (
        phonenumbers.Leniency.POSSIBLE if _PHONE_CUE.search(text) else phonenumbers.Leniency.VALID
    )
    found: list[tuple[str, str, int, int]] = []
    for region in settings.MOSS_BRIEF_PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
            if any(start < match.end and match.start < end for _, _, start, end in found):
                continue
            if sum(c.isdigit() for c in match.raw_string) < MIN_PHONE_DIGITS:
                continue
            if _DIGITS_AROUND.search(text[: match.start]) or _DIGITS_AFTER.match(text[match.end :]):
                continue  # part of a longer number: a card, an account
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            found.append((match.raw_string, e164, match.start, match.end))
    return found


def _amount_key(match: re.Match[str]) -> str:
    number = (match["n1"] or match["n2"]).replace(",", "")
    symbol, code = match["symbol"], match["code1"] or match["code2"]
    currency = _SYMBOLS[symbol] if symbol else _CODES.get(code.lower(), code.upper())
    return f"{currency} {float(number):.2f}"


def _date_key(match: re.Match[str]) -> str:
    """ISO where the text names a day ("2026-11-25", "11-25" without a year), else the words."""
    if match["iso"]:
        return match["iso"]
    if match["ordinal"]:
        return match["ordinal"].lower()
    if match["numeric"]:
        month, day, *year = match["numeric"].split("/")
        return _month_day(int(month), int(day), year[0] if year else "")
    for group in ("md", "dm"):
        if match[group]:
            words = re.findall(r"[a-z]+|\d+", match[group].lower())
            words = [w for w in words if w not in ("st", "nd", "rd", "th", "of")]
            numbers = [w for w in words if w.isdigit()]
            month = next(_MONTHS[w] for w in words if w in _MONTHS)
            return _month_day(month, int(numbers[0]), numbers[1] if len(numbers) > 1 else "")
    return " ".join(match[0].lower().split())


def _month_day(month: int, day: int, year: str) -> str:
    if len(year) == 2:
        year = "20" + year
    return f"{year}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


# --- commitments ----------------------------------------------------------------------------

_DONE = (
    r"(?:issued|re-?issued|processed|refunded|credited|applied|scheduled|re-?scheduled|arranged"
    r"|sent|re-?sent|escalated|waived|reversed|booked|re-?booked|set\s+up|opened|filed|submitted"
    r"|requested|ordered|cancell?ed|emailed|texted|shipped|re-?shipped|replaced|expedited|updated"
    r"|fixed|reset|restored|reactivated|upgraded|added|approved|authori[sz]ed|flagged|removed"
    r"|adjusted|reimbursed|returned|released|unlocked|initiated|created|logged|raised|placed"
    r"|confirmed|noted|transferred|extended|paused|started|assigned|passed|forwarded|put\s+in"
    r"|put\s+through|generated|activated|dispatched|lifted|granted|honou?red|matched|covered)"
)
_SUBJECT = r"\b(?:i|we)"
_NOT_PROMISES = (
    r"need|have\s+to|ask|try|want|like|help|get\s+started|see\s+if|check\s+(?:if|whether)"
    r"|not|never|be\s+(?:able|happy|glad|your|the|assisting|helping|with\s+you|honest|frank)"
)
# Past participles that report something seen, not something done.
# Refusals are not commitments either: "we have declined the refund".
_NOT_DONE = (
    r"received|noticed|tried|needed|wanted|checked|looked|reviewed|listened|called"
    r"|declined|denied|rejected|refused|failed|missed"
)
_IRREGULAR_DONE = r"put|sent|set|made|found|given|taken|done|paid|held|kept|left|told|spoken"
# Offers: "I can send you a loan laptop", "we can refund you".
_OFFERS = (
    r"offer|send|refund|give|credit|waive|arrange|book|issue|replace|ship|extend|upgrade|cancel"
    r"|email|text|reship|resend|reverse|apply|escalate|transfer|cover|expedite"
)
_COMMITMENT = re.compile(
    # anyone will: "I'll call you back", "a specialist will call you", "they'll confirm"
    rf"(?:'ll|\bwill|\bshall|'m\s+going\s+to|\bam\s+going\s+to|'re\s+going\s+to"
    rf"|\bare\s+going\s+to)\s+(?!(?:{_NOT_PROMISES})\b)"
    rf"(?:(?:also|just|now|then|personally|definitely|automatically|make\s+sure\s+to)\s+)?"
    rf"[a-z]+"
    # I've issued / we have just sent / I've asked the team / I issued
    rf"|{_SUBJECT}(?:'ve|\s+have|\s+had)\s+(?:(?:also|just|now|already|gone\s+ahead\s+and"
    rf"|went\s+ahead\s+and)\s+)*(?:(?!(?:{_NOT_DONE})\b)[a-z]+ed|{_IRREGULAR_DONE}|{_DONE})\b"
    rf"|{_SUBJECT}\s+(?:(?:also|just|now|already)\s+)?{_DONE}\b"
    rf"|{_SUBJECT}\s+can\s+(?:(?:also)\s+)?(?:{_OFFERS})\b"
    # it has been refunded / the credit was applied / is scheduled
    rf"|\b(?:has|have|had|was|were|is|are|'s)\s+(?:(?:now|just|already)\s+)?been\s+{_DONE}\b"
    rf"|\b(?:is|are|'s)\s+(?:now\s+)?(?:scheduled|booked|confirmed|approved|on\s+(?:its|the)\s+way)\b"
    # you should see / expect a refund
    rf"|\byou\s+should\s+(?:receive|get|see|hear)\b"
    rf"|\b(?:expect|look\s+out\s+for)\s+(?:a|an|the|your)\b",
    re.IGNORECASE,
)
# A sentence ends at . ! ? before a space, so "$49.99" and "3 p.m. Friday" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TOPICS = {
    "refund": re.compile(r"\brefund|reimburs|money\s+back", re.IGNORECASE),
    "credit": re.compile(r"\bcredit(?!\s+card)|\bvoucher|\bcoupon|\bdiscount", re.IGNORECASE),
    "callback": re.compile(r"\bcall(?:ing)?\s+(?:you\s+)?back|\bcallback|\bcall\s+you\b", re.I),
    "replacement": re.compile(r"\breplac|\bre-?ship|\bnew\s+one\b|\bexchange", re.IGNORECASE),
    "cancellation": re.compile(r"\bcancel", re.IGNORECASE),
    "fee waiver": re.compile(r"\bwaive|\bfee\b.*\b(?:removed|reversed)", re.IGNORECASE),
    "escalation": re.compile(r"\bescalat|\bspecialist|\bsupervisor|\bmanager", re.IGNORECASE),
    "appointment": re.compile(r"\bappointment|\btechnician|\bvisit\b|\bschedul", re.IGNORECASE),
    "follow-up": re.compile(r"\bfollow(?:\s|-)?up|\bemail\s+you|\bsend\s+you|\btext\s+you", re.I),
}


@dataclass(frozen=True)
class Commitment:
    text: str  # the sentences of the turn that commit, as written
    topics: tuple[str, ...]


def commitment_extract(text: str) -> Commitment | None:
    """The sentences of a bot's or agent's turn that say what it did or will do, if any."""
    text = text.replace("\u2019", "'")  # typographic apostrophes: "I\u2019ll"
    sentences = [
        s.strip()
        for s in _SENTENCE_END.split(text)
        if s.strip() and not s.rstrip().endswith("?") and _COMMITMENT.search(s)
    ]
    if not sentences:
        return None
    joined = " ".join(sentences)
    topics = tuple(name for name, pattern in _TOPICS.items() if pattern.search(joined))
    return Commitment(text=joined, topics=topics)


# --- what search reads of a turn: a stated cause, a question or request -----------------------

# The usual causal connectives: a turn that says why something happened.
_CAUSE = re.compile(
    r"\b(?:because|caused\s+by|due\s+to|owing\s+to|as\s+a\s+result|reasons?|so\s+that"
    r"|that'?s\s+why|which\s+is\s+why|thanks\s+to|led\s+to|leads?\s+to"
    r"|result(?:ed|s|ing)?\s+(?:in|from)|therefore|hence|consequently)\b",
    re.IGNORECASE,
)
# A question, or a request for an answer ("Please reply with…", "Let me know which you prefer",
# "Reply YES to confirm"): the next turn by someone else answers it.
_ASKS = re.compile(
    r"\?|\b(?:please\s+(?:reply|confirm|send|share|tell|provide|upload|let\s+me\s+know)"
    r"|let\s+(?:me|us)\s+know|reply\s+with)\b",
    re.IGNORECASE,
)
_REPLY_WORD = re.compile(r"\b[Rr]eply\s+[A-Z]{2,}\b")


def turn_signals(text: str) -> dict[str, bool]:
    """What hybrid search reads of a turn (services/search.py): whether it states a cause (what
    a "why" question looks for) and whether it asks something (the next turn answers it)."""
    text = text.replace("\u2019", "'")  # typographic apostrophes: "that\u2019s why"
    signals = {}
    if _CAUSE.search(text):
        signals["cause"] = True
    if _ASKS.search(text) or _REPLY_WORD.search(text):
        signals["asks"] = True
    return signals


def turn_extract(text: str) -> dict[str, Any]:
    """What the brief keeps of one turn, computed once when its text is stored (Turn.extracted),
    with what search reads of it (`turn_signals`). The commitment is kept whatever the role: the
    brief counts only bots' and agents'."""
    extracted: dict[str, Any] = dict(turn_signals(text))
    facts = facts_extract(text)
    if facts:
        extracted["facts"] = [[fact.kind, fact.value, fact.key] for fact in facts]
    commitment = commitment_extract(text)
    if commitment is not None:
        clipped = commitment.text
        if len(clipped) > MAX_COMMITMENT_CHARS:
            clipped = clipped[: MAX_COMMITMENT_CHARS - 1].rstrip() + "\u2026"
        extracted["commitment"] = {"text": clipped, "topics": list(commitment.topics)}
    return extracted
