"""Each server process's in-memory search index of the sessions it searches.

Why: hybrid search over one session in SQL reads every turn's two vectors and its
tsvector on every query (tens of milliseconds at 10k turns, more on a big table).
Held here as arrays, the same score costs about a millisecond, whatever the table holds.

What one session's index holds, for its turns up to Session.last_seq:
- one semantic vector per turn: the normalised plain and context vectors blended at
  the default context weight. A blend of cosines is linear in the query, so one dot
  product gives the SQL's blended similarity exactly;
- BM25 postings read from the turn's tsvector (lexeme -> turns, term frequency) and
  its length in lexemes;
- what the query-intent boosts read: the speaker's role, a commitment, fact kinds, a
  stated cause; and whether the turn asks something (the answer lift, Ranking.reply_share).

Fresh: every query reads the session's last_seq and search_version in the same round
trip as its query's lexemes. Turns above the index's last_seq are appended (a new
turn is an INSERT with the next sequence number); any UPDATE or DELETE of a session's
turns bumps search_version (a trigger, migration 0014) and the next query reloads.
Bounded: least recently used indexes are dropped past MOSS_SEARCH_INDEX_MB per
process; a session too big for it is searched in SQL (services/search.py), as are
queries across more than MAX_INDEXED_SESSIONS sessions or with a non-default Ranking.
A query with a client-supplied vector is scored against the plain vectors alone (the
client's model is not ours): an index keeps those too once such a query asks for them.

The scores are the SQL's; tests/services/test_search_index.py holds the two equal.
"""

from __future__ import annotations

import array
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection

from sessions_app.services.query_intent import QueryIntent

# Bytes per turn before its postings: the float32 vector, id, seq, length, role and flags.
_ROW_BYTES = 4 * settings.EMBEDDING_DIMENSIONS + 8 + 8 + 8 + 4 + 5


class _Growing:
    """A numpy array that grows by doubling, so appending n rows costs O(n), not O(size)."""

    def __init__(self, dtype: Any, width: int | None = None) -> None:
        self._shape_tail = () if width is None else (width,)
        self._data = np.zeros((16, *self._shape_tail), dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        needed = self.size + len(values)
        if needed > len(self._data):
            capacity = max(needed, 2 * len(self._data))
            grown = np.zeros((capacity, *self._shape_tail), self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : needed] = values
        self.size = needed

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)


@dataclass
class _Postings:
    """The turns (row numbers) holding a lexeme, role or fact kind, and how often: packed
    machine integers (6 bytes a posting), not lists of Python ints (about 40)."""

    rows: array.array[int] = field(default_factory=lambda: array.array("i"))
    tf: array.array[int] = field(default_factory=lambda: array.array("H"))
    _arrays: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, row: int, tf: int = 1) -> None:
        self.rows.append(row)
        self.tf.append(min(tf, 65535))
        self._arrays = None

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Built on first use after a change (queries outnumber appends); copies, so the
        # packed arrays stay free to grow.
        if self._arrays is None:
            self._arrays = (
                np.frombuffer(self.rows, dtype=np.int32).astype(np.int64),
                np.frombuffer(self.tf, dtype=np.uint16).astype(np.float64),
            )
        return self._arrays


@dataclass
class SessionIndex:
    session_id: int
    created_at: datetime
    search_version: int
    context_weight: float
    last_seq: int = 0
    ids: _Growing = field(default_factory=lambda: _Growing(np.int64))
    seqs: _Growing = field(default_factory=lambda: _Growing(np.int64))
    vectors: _Growing = field(
        default_factory=lambda: _Growing(np.float32, settings.EMBEDDING_DIMENSIONS)
    )
    # The normalised plain vectors too, once a query with a client-supplied vector needs
    # them (its model is not ours, so it is scored against the plain ones alone).
    plain: _Growing | None = None
    embedded: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    internal: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    commitment: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    cause: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    asks: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    # Each turn's role as a number (role_names' position; -1 without one), so that the
    # answer lift can tell a reply by another speaker.
    role_codes: _Growing = field(default_factory=lambda: _Growing(np.int32))
    role_names: dict[str, int] = field(default_factory=dict)
    lengths: _Growing = field(default_factory=lambda: _Growing(np.float64))
    lexemes: dict[str, _Postings] = field(default_factory=dict)
    roles: dict[str, _Postings] = field(default_factory=dict)
    fact_kinds: dict[str, _Postings] = field(default_factory=dict)
    posting_count: int = 0
    # What a hit shows of each turn (shown_at): its doc_id, text, metadata as JSON text and
    # writing key's prefix, NUL-joined (PostgreSQL text holds no NUL) in one UTF-8 buffer,
    # and where each row's part ends: 8 bytes a turn besides its text, where Python
    # strings would take about 270. Any change to a stored turn bumps search_version, so
    # these are as fresh as the scores.
    shown: bytearray = field(default_factory=bytearray)
    shown_ends: _Growing = field(default_factory=lambda: _Growing(np.int64))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.ids.size

    @property
    def nbytes(self) -> int:
        columns = (self.ids, self.seqs, self.vectors, self.embedded, self.internal)
        flags = (self.commitment, self.cause, self.asks, self.role_codes, self.lengths)
        arrays = sum(c.nbytes for c in (*columns, *flags))
        if self.plain is not None:
            arrays += self.plain.nbytes
        # A posting is 6 bytes packed, 16 more once a query has used it; a lexeme and its
        # entry about 150 bytes.
        postings = 22 * self.posting_count + 150 * len(self.lexemes)
        return arrays + postings + len(self.shown) + self.shown_ends.nbytes

    def shown_at(self, row: int) -> tuple[str, str, str | None, str]:
        """(doc_id, text, metadata as JSON text or None, the writing key's prefix)."""
        start = int(self.shown_ends.view[row - 1]) if row else 0
        part = bytes(self.shown[start : int(self.shown_ends.view[row])])
        doc_id, text, metadata, prefix = part.decode().split("\x00")
        return doc_id, text, metadata or None, prefix

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Add turns read by _ROWS_SQL, in sequence order."""
        if not rows:
            return
        start = self.size
        width = settings.EMBEDDING_DIMENSIONS
        vectors = np.zeros((len(rows), width), dtype=np.float32)
        plains = np.zeros((len(rows), width), dtype=np.float32)
        embedded = np.zeros(len(rows), dtype=np.bool_)
        for offset, row in enumerate(rows):
            plain, context = _vector(row[3]), _vector(row[4])
            if plain is None:
                continue  # pending: similarity 0, as in SQL
            embedded[offset] = True
            plain = _unit(plain)
            plains[offset] = plain
            if context is None:
                vectors[offset] = plain
            else:
                context = _unit(context)
                vectors[offset] = (1 - self.context_weight) * plain + self.context_weight * context
        self.ids.extend(np.array([row[0] for row in rows], dtype=np.int64))
        self.seqs.extend(np.array([row[1] for row in rows], dtype=np.int64))
        self.internal.extend(np.array([row[2] for row in rows], dtype=np.bool_))
        self.vectors.extend(vectors)
        if self.plain is not None:
            self.plain.extend(plains)
        self.embedded.extend(embedded)
        self.commitment.extend(np.array([row[6] for row in rows], dtype=np.bool_))
        self.cause.extend(np.array([row[10] for row in rows], dtype=np.bool_))
        self.asks.extend(np.array([row[11] for row in rows], dtype=np.bool_))
        codes = [
            -1 if row[5] is None else self.role_names.setdefault(row[5], len(self.role_names))
            for row in rows
        ]
        self.role_codes.extend(np.array(codes, dtype=np.int32))
        self.lengths.extend(np.array([len(row[8] or ()) for row in rows], dtype=np.float64))
        for offset, row in enumerate(rows):
            index = start + offset
            if row[5] is not None:
                self.roles.setdefault(row[5], _Postings()).add(index)
            for kind in row[7] or ():
                self.fact_kinds.setdefault(kind, _Postings()).add(index)
            for lexeme, tf in zip(row[8] or (), row[9] or (), strict=True):
                self.lexemes.setdefault(lexeme, _Postings()).add(index, tf)
            self.posting_count += len(row[8] or ())
        ends = []
        for row in rows:
            self.shown += "\x00".join(part or "" for part in row[12:16]).encode()
            ends.append(len(self.shown))
        self.shown_ends.extend(np.array(ends, dtype=np.int64))
        self.last_seq = int(rows[-1][1])


def _unit(vector: np.ndarray) -> np.ndarray:
    """Scaled to length 1 in double precision: a client's values may be as large as float32
    allows, and their squares would overflow it."""
    wide = vector.astype(np.float64)
    norm = np.linalg.norm(wide)
    return (wide / norm if norm else wide).astype(np.float32)


def _vector(raw: bytes | None) -> np.ndarray | None:
    """pgvector's binary form: dimensions (int16), unused (int16), big-endian float4s."""
    if raw is None:
        return None
    return np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)


# The sessions' states and the query's lexemes (the english config's stemming and stop
# words, as the turns' search_vector), in one round trip.
_STATE_SQL = """
    WITH q AS (SELECT ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', %(query)s))) AS terms)
    SELECT q.terms, s.id, s.name, s.created_at, s.last_seq, s.search_version
    FROM q LEFT JOIN sessions_app_session s ON s.id = ANY(%(session_ids)s)
"""
# What an index holds of each turn: what ranks it (fact kinds as the SQL's fact boost
# reads them), and what a hit shows, so that answering takes no further round trip.
_ROWS_SQL = """
    SELECT t.id, t.seq, t.internal, t.embedding, t.context_embedding,
           lower(t.metadata->>'role'),
           COALESCE(t.extracted ? 'commitment', false),
           ARRAY(SELECT DISTINCT f->>0 FROM jsonb_array_elements(
               CASE WHEN jsonb_typeof(t.extracted->'facts') = 'array'
                    THEN t.extracted->'facts' ELSE '[]'::jsonb END) AS f
                 WHERE f->>0 IS NOT NULL),
           ARRAY(SELECT u.lexeme FROM unnest(t.search_vector) AS u),
           ARRAY(SELECT COALESCE(array_length(u.positions, 1), 1)
                 FROM unnest(t.search_vector) AS u),
           COALESCE(t.extracted ? 'cause', false),
           COALESCE(t.extracted ? 'asks', false),
           t.doc_id, t.text, t.metadata::text, t.written_by_key_prefix
    FROM sessions_app_turn t
    WHERE t.session_id = %s AND t.seq > %s AND t.seq <= %s
    ORDER BY t.seq
"""


# A query across more sessions than this (a supervisor's search) is scored in SQL: it
# would load them all here for one answer.
MAX_INDEXED_SESSIONS = 50


@dataclass(frozen=True)
class SearchedState:
    names: dict[int, str]  # session id -> name
    terms: list[str]
    # Up to date, one per searched session; None when they are too many or too big to
    # hold: the caller searches in SQL.
    indexes: list[SessionIndex] | None


_indexes: OrderedDict[tuple[str, int], SessionIndex] = OrderedDict()
_indexes_lock = threading.Lock()


def sessions_index_read(
    *, session_ids: list[int], query: str, context_weight: float, plain: bool = False
) -> SearchedState:
    """The sessions' names, the query's lexemes, and their indexes brought up to date;
    `plain`: with their plain vectors (a query with a client-supplied vector)."""
    with connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, {"query": query, "session_ids": session_ids})
        rows = cursor.fetchall()
    terms = rows[0][0]
    # Sessions deleted since the caller read them find nothing, in SQL as here.
    states = [row[1:] for row in rows if row[1] is not None]
    names = {session_id: name for session_id, name, *_ in states}
    budget = settings.MOSS_SEARCH_INDEX_MB * 1024 * 1024
    # A search across sessions may take half the budget, so it cannot evict everything.
    share = budget if len(states) == 1 else budget // 2
    row_bytes = _ROW_BYTES + (4 * settings.EMBEDDING_DIMENSIONS if plain else 0)
    if len(states) > MAX_INDEXED_SESSIONS or sum(s[3] for s in states) * row_bytes > share:
        return SearchedState(names=names, terms=terms, indexes=None)
    indexes = [
        _index_fresh(
            session_id=session_id,
            created_at=created_at,
            last_seq=last_seq,
            search_version=search_version,
            context_weight=context_weight,
            plain=plain,
        )
        for session_id, _, created_at, last_seq, search_version in states
    ]
    if sum(index.nbytes for index in indexes) > share:
        return SearchedState(names=names, terms=terms, indexes=None)
    with _indexes_lock:
        for index in indexes:
            key = _key(index.session_id)
            _indexes[key] = index
            _indexes.move_to_end(key)
        total = sum(held.nbytes for held in _indexes.values())
        while total > budget and len(_indexes) > len(indexes):
            _, dropped = _indexes.popitem(last=False)
            total -= dropped.nbytes
    return SearchedState(names=names, terms=terms, indexes=indexes)


def _key(session_id: int) -> tuple[str, int]:
    return (str(connection.settings_dict["NAME"]), session_id)


def _index_fresh(
    *,
    session_id: int,
    created_at: datetime,
    last_seq: int,
    search_version: int,
    context_weight: float,
    plain: bool,
) -> SessionIndex:
    """The held index if it still holds the session as it is (and the plain vectors when
    they are wanted), with newer turns added; else a new one."""
    with _indexes_lock:
        index = _indexes.get(_key(session_id))
    if index is None or (
        index.created_at != created_at
        or index.search_version != search_version
        or index.context_weight != context_weight
        or index.last_seq > last_seq
        or (plain and index.plain is None)
    ):
        index = SessionIndex(
            session_id=session_id,
            created_at=created_at,
            search_version=search_version,
            context_weight=context_weight,
            plain=_Growing(np.float32, settings.EMBEDDING_DIMENSIONS) if plain else None,
        )
    with index.lock:
        if index.last_seq < last_seq:
            index.append(_rows_read(session_id=session_id, after=index.last_seq, upto=last_seq))
            index.last_seq = last_seq
    return index


def _rows_read(*, session_id: int, after: int, upto: int) -> list[tuple[Any, ...]]:
    # Binary results: vectors arrive as pgvector's packed floats, not text to parse.
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw_connection = connection.connection
        assert raw_connection is not None
        with psycopg.Cursor(raw_connection) as cursor:
            cursor.execute(_ROWS_SQL, (session_id, after, upto), binary=True)
            return cursor.fetchall()


def session_index_clear() -> None:
    """Forget every index (tests, and a process that switches databases)."""
    with _indexes_lock:
        _indexes.clear()


@dataclass(frozen=True)
class IndexWeights:
    """Ranking's BM25 constants and boosts, as services/search.py defines them."""

    k1: float
    b: float
    role_boost: float
    commitment_boost: float
    fact_boost: float
    why_boost: float
    reply_share: float


@dataclass
class _Searched:
    """One index's share of a query: which of its turns are searched, their similarity."""

    index: SessionIndex
    mask: np.ndarray
    similarity: np.ndarray
    rank: np.ndarray | None = None
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def sessions_index_rank(
    *,
    indexes: list[SessionIndex],
    vector: np.ndarray | None,
    terms: list[str],
    alpha: float,
    top_k: int,
    include_internal: bool,
    filter_seqs: dict[int, list[int]] | None,
    intent: QueryIntent,
    weights: IndexWeights,
    plain: bool = False,
) -> list[RankedTurn]:
    """The top_k turns as services/search.py's SQL ranks them over the same sessions: by
    score, then id; its caller orders them for display. `filter_seqs`: the sequence
    numbers a metadata filter keeps, by session id."""
    query = None
    if alpha > 0.0 and vector is not None:
        query = _unit(vector)
    locks = [index.lock for index in sorted(indexes, key=lambda index: index.session_id)]
    for lock in locks:
        lock.acquire()
    try:
        searched = [
            _searched(
                index,
                query=query,
                include_internal=include_internal,
                filter_seqs=filter_seqs,
                plain=plain,
            )
            for index in indexes
        ]
        if alpha < 1.0:
            _bm25(searched, terms=terms, weights=weights)
        top = max(
            (
                float(part.rank.max())
                for part in searched
                if part.rank is not None and len(part.rank)
            ),
            default=0.0,
        )
        for part in searched:
            _score(part, alpha=alpha, top=top, intent=intent, weights=weights)
        if 0.0 < alpha < 1.0 and weights.reply_share > 0:
            best = max((float(p.scores[p.mask].max()) for p in searched if p.mask.any()), default=0)
            for part in searched:
                part.scores = _replies(part, best=best, weights=weights)
        chosen_rows = [np.flatnonzero(part.candidates) for part in searched]
        chosen_ids = [part.index.ids.view[part.candidates] for part in searched]
        chosen_scores = [part.scores[part.candidates] for part in searched]
    finally:
        for lock in locks:
            lock.release()
    parts = [np.full(len(rows), number) for number, rows in enumerate(chosen_rows)]
    ids = np.concatenate(chosen_ids) if chosen_ids else np.zeros(0, dtype=np.int64)
    scores = np.concatenate(chosen_scores) if chosen_scores else np.zeros(0)
    rows = np.concatenate(chosen_rows) if chosen_rows else np.zeros(0, dtype=np.int64)
    part_of = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if len(ids) > top_k:
        # Only rows scoring at least the top_k-th best can be chosen (ties included).
        kth = np.partition(scores, len(ids) - top_k)[len(ids) - top_k]
        keep = scores >= kth
        ids, scores, rows, part_of = ids[keep], scores[keep], rows[keep], part_of[keep]
    order = np.lexsort((ids, -scores))[:top_k]
    return [
        RankedTurn(
            id=int(ids[n]),
            score=float(scores[n]),
            index=searched[int(part_of[n])].index,
            row=int(rows[n]),
        )
        for n in order
    ]


@dataclass(frozen=True)
class RankedTurn:
    id: int
    score: float
    index: SessionIndex
    row: int  # its place in the index

    @property
    def seq(self) -> int:
        return int(self.index.seqs.view[self.row])

    @property
    def internal(self) -> bool:
        return bool(self.index.internal.view[self.row])


def _searched(
    index: SessionIndex,
    *,
    query: np.ndarray | None,
    include_internal: bool,
    filter_seqs: dict[int, list[int]] | None,
    plain: bool,
) -> _Searched:
    size = index.size
    mask = np.ones(size, dtype=np.bool_) if include_internal else ~index.internal.view
    if filter_seqs is not None:
        kept = np.zeros(size, dtype=np.bool_)
        seqs = np.asarray(filter_seqs.get(index.session_id, []), dtype=np.int64)
        rows = np.minimum(np.searchsorted(index.seqs.view, seqs), max(size - 1, 0))
        # A turn stored or deleted meanwhile is no row of this index: exact matches only.
        if size:
            kept[rows[index.seqs.view[rows] == seqs]] = True
        mask &= kept
    similarity = np.zeros(size, dtype=np.float64)
    if query is not None:
        vectors = index.plain if plain else index.vectors
        assert vectors is not None
        similarity = (vectors.view @ query).astype(np.float64)
    return _Searched(index=index, mask=mask, similarity=similarity)


def _score(
    part: _Searched, *, alpha: float, top: float, intent: QueryIntent, weights: IndexWeights
) -> None:
    """Which of this index's turns it puts forward, and every turn's score."""
    index = part.index
    if alpha == 1.0:
        part.candidates, part.scores = part.mask & index.embedded.view, part.similarity
        return
    assert part.rank is not None
    keyword = part.rank / top if top > 0 else part.rank
    if alpha == 0.0:
        part.candidates, part.scores = part.rank > 0, keyword
        return
    part.candidates = part.mask
    part.scores = alpha * part.similarity + (1 - alpha) * keyword
    part.scores += _prior(index, intent=intent, weights=weights)


def _bm25(searched: list[_Searched], *, terms: list[str], weights: IndexWeights) -> None:
    """Okapi BM25 over all the searched turns: IDF from how many of them hold each term,
    length normalised by their mean length in lexemes (0 where nothing matches)."""
    count = sum(int(part.mask.sum()) for part in searched)
    total_length = sum(float(part.index.lengths.view[part.mask].sum()) for part in searched)
    mean_length = max(total_length / count, 1.0) if count else 1.0
    postings: dict[str, list[tuple[_Searched, np.ndarray, np.ndarray]]] = {}
    for part in searched:
        part.rank = np.zeros(part.index.size, dtype=np.float64)
        for term in set(terms):
            held = part.index.lexemes.get(term)
            if held is None:
                continue
            rows, tf = held.arrays
            kept = part.mask[rows]
            if kept.any():
                postings.setdefault(term, []).append((part, rows[kept], tf[kept]))
    for matches in postings.values():
        df = sum(len(rows) for _, rows, _ in matches)
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        for part, rows, tf in matches:
            assert part.rank is not None
            norm = 1 - weights.b + weights.b * part.index.lengths.view[rows] / mean_length
            part.rank[rows] += idf * tf * (weights.k1 + 1) / (tf + weights.k1 * norm)


def _prior(index: SessionIndex, *, intent: QueryIntent, weights: IndexWeights) -> np.ndarray:
    """The query-intent boosts (services/search.py's _PRIOR)."""
    prior = np.zeros(index.size, dtype=np.float64)
    if intent.role is not None and intent.role in index.roles:
        prior[index.roles[intent.role].arrays[0]] += weights.role_boost
    if intent.commitment:
        prior[index.commitment.view] += weights.commitment_boost
    has_fact = np.zeros(index.size, dtype=np.bool_)
    for kind in intent.fact_kinds:
        if kind in index.fact_kinds:
            has_fact[index.fact_kinds[kind].arrays[0]] = True
    prior[has_fact] += weights.fact_boost
    if intent.why:
        prior[index.cause.view] += weights.why_boost
    return prior


def _replies(part: _Searched, *, best: float, weights: IndexWeights) -> np.ndarray:
    """The answer lift (services/search.py's _REPLIES): where a searched turn scoring the
    best of all searched asks something, the next searched turn of its thread (private
    notes and the rest apart), by another speaker, gains reply_share of the gap between
    their scores."""
    index, scores = part.index, part.scores
    rows = np.flatnonzero(part.mask)  # in sequence order
    if len(rows) < 2:
        return scores
    lifted = scores.copy()
    internal, asks, roles = index.internal.view, index.asks.view, index.role_codes.view
    for notes in (False, True):
        thread = rows[internal[rows] == notes]
        before, after = thread[:-1], thread[1:]
        answers = asks[before] & (roles[before] != roles[after]) & (scores[before] >= best)
        gap = np.maximum(scores[before[answers]] - scores[after[answers]], 0)
        lifted[after[answers]] += weights.reply_share * gap
    return lifted
