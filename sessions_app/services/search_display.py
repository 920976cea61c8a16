"""How the console shows search results: near the best score only, and why each matched.

Relative cut-off: a hit scoring below MOSS_SEARCH_RELATIVE_CUTOFF × the best
score of its search is hidden (0.5 by default: with the best at 0.62, hits
under 0.31 go). Scores are relative to the session's own best match, so a
fixed threshold would hide everything in one session and nothing in another.
The API returns every hit it was asked for; only the console trims.

Why a turn matched: Postgres' `ts_headline` marks the query's words (stemmed,
as the keyword score matches them) in an excerpt of the turn. The excerpt is
escaped first and only the marks become `<mark>`, so a turn's text never
becomes markup. A hit with no marked word matched by meaning alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from sessions_app.services.search import Hit

START, STOP = "\x01", "\x02"
HEADLINE_OPTIONS = f"StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=12, MaxFragments=1"
EXCERPT_CHARS = 400


@dataclass(frozen=True)
class MarkedHit:
    hit: Hit
    excerpt: SafeString
    # False when no word of the query is in the turn: it matched by meaning.
    by_words: bool


def hits_near_best(hits: list[Hit], *, ratio: float | None = None) -> list[Hit]:
    """The hits within `ratio` of the best score (hits come best first)."""
    cutoff = settings.MOSS_SEARCH_RELATIVE_CUTOFF if ratio is None else ratio
    if not hits or hits[0].score <= 0:
        return hits
    floor = hits[0].score * cutoff
    return [hit for hit in hits if hit.score >= floor]


def _excerpt_html(raw: str) -> tuple[SafeString, bool]:
    raw = raw[:EXCERPT_CHARS]
    if raw.count(START) > raw.count(STOP):
        raw += STOP
    html = escape(raw).replace(START, "<mark>").replace(STOP, "</mark>")
    return mark_safe(html), START in raw  # noqa: S308 - escaped above, marks are ours


def hits_mark(*, hits: list[Hit], session_ids: list[int], query: str) -> list[MarkedHit]:
    """The hits with an excerpt each that marks the query's words (one query for all)."""
    if not hits:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.name, t.doc_id,
                   ts_headline('english', translate(t.text, %(marks)s, ''),
                               replace(plainto_tsquery('english', %(query)s)::text,
                                       ' & ', ' | ')::tsquery,
                               %(options)s)
            FROM sessions_app_turn t JOIN sessions_app_session s ON s.id = t.session_id
            WHERE t.session_id = ANY(%(session_ids)s) AND t.doc_id = ANY(%(doc_ids)s)
            """,
            {
                "marks": START + STOP,
                "query": query,
                "options": HEADLINE_OPTIONS,
                "session_ids": session_ids,
                "doc_ids": [hit.id for hit in hits],
            },
        )
        headlines = {(name, doc_id): text for name, doc_id, text in cursor.fetchall()}
    marked = []
    for hit in hits:
        raw = headlines.get((hit.session_name, hit.id), hit.text)
        excerpt, by_words = _excerpt_html(raw)
        marked.append(MarkedHit(hit=hit, excerpt=excerpt, by_words=by_words))
    return marked
