"""How the console shows search results: near the best score only, and why each matched.

Relative cut-off: a hit scoring below MOSS_SEARCH_RELATIVE_CUTOFF times the best
score of its search is hidden (0.5 by default: with the best at 0.62, hits
under 0.31 go). Scores are relative to the session's own best match, so a
fixed threshold would hide everything in one session and nothing in another.
The API returns every hit it was asked for; only the console trims.

Why a turn matched: each word of the turn is put to Postgres' english
configuration (the one the keyword score uses, so "refunds" matches "refund")
against the query, in one statement for all hits; the matching words are
marked in an excerpt around the first of them. The text is escaped and only
the marks become `<mark>`, so a turn's text never becomes markup (and shows
exactly as written: `ts_headline` would drop anything that looks like a tag).
A hit with no marked word matched by meaning alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from sessions_app.services.search import Hit

WORD = re.compile(r"\w+")
# Words of a turn looked at for marks, and the excerpt shown around the first mark.
SCANNED_CHARS = 4000
EXCERPT_BEFORE, EXCERPT_CHARS = 80, 320


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


def _matching_words(words: set[str], query: str) -> set[str]:
    if not words:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT w FROM unnest(%(words)s::text[]) AS w,
                 (SELECT replace(plainto_tsquery('english', %(query)s)::text,
                                 ' & ', ' | ')::tsquery AS tq) q
            WHERE numnode(q.tq) > 0 AND to_tsvector('english', w) @@ q.tq
            """,
            {"words": sorted(words), "query": query},
        )
        return {row[0] for row in cursor.fetchall()}


def _excerpt(text: str, matching: set[str]) -> tuple[SafeString, bool]:
    scanned = text[:SCANNED_CHARS]
    spans = [m.span() for m in WORD.finditer(scanned) if m.group().lower() in matching]
    begin = max(spans[0][0] - EXCERPT_BEFORE, 0) if spans else 0
    end = min(begin + EXCERPT_CHARS, len(text))
    pieces = ["…" if begin else ""]
    cursor = begin
    for start, stop in spans:
        if start < begin or stop > end:
            continue
        pieces.append(escape(text[cursor:start]))
        pieces.append(format_html("<mark>{}</mark>", text[start:stop]))
        cursor = stop
    pieces.append(escape(text[cursor:end]))
    pieces.append("…" if end < len(text) else "")
    return mark_safe("".join(pieces)), bool(spans)


def hits_mark(*, hits: list[Hit], query: str) -> list[MarkedHit]:
    """The hits with an excerpt each that marks the query's words (one statement for all)."""
    words = {m.group().lower() for hit in hits for m in WORD.finditer(hit.text[:SCANNED_CHARS])}
    matching = _matching_words(words, query)
    marked = []
    for hit in hits:
        excerpt, by_words = _excerpt(hit.text, matching)
        marked.append(MarkedHit(hit=hit, excerpt=excerpt, by_words=by_words))
    return marked
