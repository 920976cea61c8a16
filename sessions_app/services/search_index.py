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
queries across sessions, with a client-supplied query vector or a non-default Ranking.

The scores are the SQL's; tests/services/test_search_index.py holds the two equal.
"""

from __future__ import annotations

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
    """The turns (row numbers) holding a lexeme, role or fact kind, and how often."""

    rows: list[int] = field(default_factory=list)
    tf: list[int] = field(default_factory=list)
    _arrays: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, row: int, tf: int = 1) -> None:
        self.rows.append(row)
        self.tf.append(tf)
        self._arrays = None

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Built on first use after a change: queries outnumber appends.
        if self._arrays is None:
            self._arrays = (np.array(self.rows, dtype=np.int64), np.array(self.tf, np.float64))
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
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.ids.size

    @property
    def nbytes(self) -> int:
        columns = (self.ids, self.seqs, self.vectors, self.embedded, self.internal)
        flags = (self.commitment, self.cause, self.asks, self.role_codes, self.lengths)
        arrays = sum(c.nbytes for c in (*columns, *flags))
        # A posting is two Python ints in lists (~16 bytes); a lexeme key ~100 bytes.
        return arrays + 16 * self.posting_count + 100 * len(self.lexemes)

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Add turns read by _ROWS_SQL, in sequence order."""
        if not rows:
            return
        start = self.size
        width = settings.EMBEDDING_DIMENSIONS
        vectors = np.zeros((len(rows), width), dtype=np.float32)
        embedded = np.zeros(len(rows), dtype=np.bool_)
        for offset, row in enumerate(rows):
            plain, context = _vector(row[3]), _vector(row[4])
            if plain is None:
                continue  # pending: similarity 0, as in SQL
            embedded[offset] = True
            plain /= np.linalg.norm(plain)
            if context is None:
                vectors[offset] = plain
            else:
                context /= np.linalg.norm(context)
                vectors[offset] = (1 - self.context_weight) * plain + self.context_weight * context
        self.ids.extend(np.array([row[0] for row in rows], dtype=np.int64))
        self.seqs.extend(np.array([row[1] for row in rows], dtype=np.int64))
        self.internal.extend(np.array([row[2] for row in rows], dtype=np.bool_))
        self.vectors.extend(vectors)
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
        self.last_seq = int(rows[-1][1])


def _vector(raw: bytes | None) -> np.ndarray | None:
    """pgvector's binary form: dimensions (int16), unused (int16), big-endian float4s."""
    if raw is None:
        return None
    return np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)


# The session's state and the query's lexemes (the english config's stemming and stop
# words, as the turns' search_vector), in one round trip.
_STATE_SQL = """
    SELECT s.name, s.created_at, s.last_seq, s.search_version,
           ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', %(query)s)))
    FROM sessions_app_session s WHERE s.id = %(session_id)s
"""
# What an index holds of each turn. Fact kinds as the SQL's fact boost reads them.
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
           COALESCE(t.extracted ? 'asks', false)
    FROM sessions_app_turn t
    WHERE t.session_id = %s AND t.seq > %s AND t.seq <= %s
    ORDER BY t.seq
"""


@dataclass(frozen=True)
class SessionState:
    name: str
    terms: list[str]
    index: SessionIndex | None  # None when the session is too big to hold: search in SQL


_indexes: OrderedDict[tuple[str, int], SessionIndex] = OrderedDict()
_indexes_lock = threading.Lock()


def session_index_read(*, session_id: int, query: str, context_weight: float) -> SessionState:
    """The session's name, the query's lexemes, and its index brought up to date."""
    with connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, {"query": query, "session_id": session_id})
        row = cursor.fetchone()
    if row is None:  # deleted since the caller fetched it: the SQL finds nothing either
        return SessionState(name="", terms=[], index=None)
    name, created_at, last_seq, search_version, terms = row
    budget = settings.MOSS_SEARCH_INDEX_MB * 1024 * 1024
    if last_seq * _ROW_BYTES > budget:
        return SessionState(name=name, terms=terms, index=None)
    key = (str(connection.settings_dict["NAME"]), session_id)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is not None:
            _indexes.move_to_end(key)
    stale = index is None or (
        index.created_at != created_at
        or index.search_version != search_version
        or index.context_weight != context_weight
        or index.last_seq > last_seq
    )
    if stale:
        index = SessionIndex(
            session_id=session_id,
            created_at=created_at,
            search_version=search_version,
            context_weight=context_weight,
        )
    assert index is not None
    with index.lock:
        if index.last_seq < last_seq:
            index.append(_rows_read(session_id=session_id, after=index.last_seq, upto=last_seq))
            index.last_seq = last_seq
    if index.nbytes > budget:
        with _indexes_lock:
            _indexes.pop(key, None)
        return SessionState(name=name, terms=terms, index=index)
    with _indexes_lock:
        _indexes[key] = index
        _indexes.move_to_end(key)
        total = sum(held.nbytes for held in _indexes.values())
        while total > budget and len(_indexes) > 1:
            _, dropped = _indexes.popitem(last=False)
            total -= dropped.nbytes
    return SessionState(name=name, terms=terms, index=index)


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


def session_index_rank(
    *,
    index: SessionIndex,
    vector: np.ndarray | None,
    terms: list[str],
    alpha: float,
    top_k: int,
    include_internal: bool,
    filter_seqs: list[int] | None,
    intent: QueryIntent,
    weights: IndexWeights,
) -> list[tuple[int, float]]:
    """The top_k (turn id, score) as services/search.py's SQL ranks them: by score,
    then id; its caller orders them for display."""
    with index.lock:
        size = index.size
        searched = np.ones(size, dtype=np.bool_) if include_internal else ~index.internal.view
        if filter_seqs is not None:
            kept = np.zeros(size, dtype=np.bool_)
            kept[np.searchsorted(index.seqs.view, np.asarray(filter_seqs, dtype=np.int64))] = True
            searched &= kept
        similarity = np.zeros(size, dtype=np.float64)
        if alpha > 0.0 and vector is not None:
            query = vector.astype(np.float32) / np.linalg.norm(vector)
            similarity = (index.vectors.view @ query).astype(np.float64)
        if alpha == 1.0:
            candidates = searched & index.embedded.view
            scores = similarity
        else:
            rank = _bm25(index, terms=terms, searched=searched, weights=weights)
            top = rank.max() if size else 0.0
            keyword = rank / top if top > 0 else rank
            if alpha == 0.0:
                candidates, scores = rank > 0, keyword
            else:
                candidates = searched
                scores = alpha * similarity + (1 - alpha) * keyword
                scores += _prior(index, intent=intent, weights=weights)
                if weights.reply_share > 0:
                    scores = _replies(index, scores=scores, searched=searched, weights=weights)
        ids = index.ids.view
        rows = np.flatnonzero(candidates)
    if not len(rows):
        return []
    if len(rows) > top_k:
        # Only rows scoring at least the top_k-th best can be chosen (ties included).
        kth = np.partition(scores[rows], len(rows) - top_k)[len(rows) - top_k]
        rows = rows[scores[rows] >= kth]
    chosen = rows[np.lexsort((ids[rows], -scores[rows]))[:top_k]]
    return [(int(ids[row]), float(scores[row])) for row in chosen]


def _bm25(
    index: SessionIndex, *, terms: list[str], searched: np.ndarray, weights: IndexWeights
) -> np.ndarray:
    """Okapi BM25 over the searched turns: IDF from how many of them hold each term,
    length normalised by their mean length in lexemes (0 where nothing matches)."""
    rank = np.zeros(index.size, dtype=np.float64)
    count = int(searched.sum())
    lengths = index.lengths.view
    mean_length = max(float(lengths[searched].mean()), 1.0) if count else 1.0
    for term in set(terms):
        postings = index.lexemes.get(term)
        if postings is None:
            continue
        rows, tf = postings.arrays
        held = searched[rows]
        rows, tf = rows[held], tf[held]
        if not len(rows):
            continue
        df = len(rows)
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        norm = 1 - weights.b + weights.b * lengths[rows] / mean_length
        rank[rows] += idf * tf * (weights.k1 + 1) / (tf + weights.k1 * norm)
    return rank


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


def _replies(
    index: SessionIndex, *, scores: np.ndarray, searched: np.ndarray, weights: IndexWeights
) -> np.ndarray:
    """The answer lift (services/search.py's _REPLIES): where a searched turn scoring the
    best asks something, the next searched turn of its thread (private notes and the rest
    apart), by another speaker, gains reply_share of the gap between their scores."""
    rows = np.flatnonzero(searched)  # in sequence order
    if len(rows) < 2:
        return scores
    best = scores[rows].max()
    lifted = scores.copy()
    internal, asks, roles = index.internal.view, index.asks.view, index.role_codes.view
    for notes in (False, True):
        thread = rows[internal[rows] == notes]
        before, after = thread[:-1], thread[1:]
        answers = asks[before] & (roles[before] != roles[after]) & (scores[before] >= best)
        gap = np.maximum(scores[before[answers]] - scores[after[answers]], 0)
        lifted[after[answers]] += weights.reply_share * gap
    return lifted
