"""Hybrid search over one session's turns (or all sessions of one customer).

score = alpha * semantic + (1 - alpha) * keyword, where semantic is the cosine
similarity from pgvector, blended with the similarity of the turn's context
vector (sessions_app/context_windows.py, `Ranking.context_weight`), and keyword is
Okapi BM25 computed in Postgres from the turns' tsvector (the english config's
stemming and stop words; IDF over the searched set; length normalisation),
scaled so the best keyword match in the searched set scores 1. A hybrid score
(0 < alpha < 1) also adds small boosts where the query asks for what a turn holds:
its speaker's role, a commitment, a kind of fact, a stated cause for a "why"
(services/query_intent.py, `Ranking`'s boosts; read from stored
metadata and Turn.extracted); and the answer to the best-matching turn, where that
turn asks something, is lifted toward it (`Ranking.reply_share`). alpha=1 is
purely semantic and skips keyword ranking, alpha=0 purely keyword and skips the
model. While the model is unavailable a query that needs it is scored by keyword
alone and says so (degraded="keyword_only");
turns whose embedding is pending count as similarity 0. The scan is exact: per-session sets are
small enough that the (session_id) index plus an exact distance beats an
approximate index that would have to post-filter by session (README, "Search").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from sessions_app import embeddings
from sessions_app.errors import InvalidInput
from sessions_app.filters import filter_compile
from sessions_app.models import Project, Session
from sessions_app.selectors import customer_sessions, session_get
from sessions_app.services.query_intent import QueryIntent, query_intent_read
from sessions_app.services.search_index import (
    IndexWeights,
    SearchedState,
    sessions_index_rank,
    sessions_index_read,
)
from sessions_app.validation import embedding_check


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: dict[str, str]
    score: float
    seq: int
    session_name: str
    # Set when a bot wrote the turn through an API key (Turn.written_by_key_prefix).
    via_key: str = ""
    # A private note (Turn.internal); found only when the search includes them.
    internal: bool = False


# SearchResult.degraded when the model was needed but unavailable.
KEYWORD_ONLY = "keyword_only"


@dataclass(frozen=True)
class SearchResult:
    docs: list[Hit]
    query: str
    time_taken_ms: float
    degraded: str | None = None
    # Which ranker scored it: "index" (the in-process index, services/search_index.py) or "sql".
    served_by: str = "sql"


# Okapi BM25's usual constants: term-frequency saturation and length normalisation.
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class Ranking:
    """How each signal is computed. The defaults are what `make eval` chose (README,
    "Search quality"); the others stay selectable so the eval can compare them."""

    # "bm25", or "ts_rank_cd" (cover density, the ranking before BM25).
    keyword: str = "bm25"
    # Semantic = (1 - w) * plain similarity + w * context similarity (the turn read after
    # the turns before it, sessions_app/context_windows.py); a turn without a context
    # vector (client-supplied embedding, or pending) counts its plain one twice.
    context_weight: float = 0.7
    # Hybrid scores add these to the blend where the query asks for what a turn holds
    # (services/query_intent.py): its speaker's role named, a commitment asked about, a
    # kind of fact asked for and extracted from the turn (Turn.extracted). 0 turns one off.
    role_boost: float = 0.15
    commitment_boost: float = 0.1
    fact_boost: float = 0.2
    # A "why" asked and a cause stated in the turn ("because", "due to"; Turn.extracted).
    why_boost: float = 0.3
    # "Postcode" matches "Can I have your postcode?" better than "B15 2TT.": where the
    # best-matching turn asks something (Turn.extracted "asks"), the next turn of the
    # thread, by another speaker, gains this share of the gap between their scores.
    reply_share: float = 0.9


DEFAULT_RANKING = Ranking()
# The default blend of semantic (1.0) and keyword (0.0), chosen by `make eval`.
DEFAULT_ALPHA = 0.9


def search_options_check(*, query: str, top_k: int, alpha: float) -> None:
    if not 1 <= top_k <= settings.MOSS_MAX_TOP_K:
        raise InvalidInput(f"top_k must be between 1 and {settings.MOSS_MAX_TOP_K}, got {top_k}")
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInput(f"alpha must be between 0.0 and 1.0, got {alpha}")
    if "\x00" in query or len(query) > settings.MOSS_MAX_TEXT_CHARS:
        raise InvalidInput("query must be at most the text size limit and contain no NUL")
    if not query.strip():
        raise InvalidInput("query must not be empty")


# The query's vector once its encode is done (embeddings.query_embed_start).
QueryEncoding = Callable[[], np.ndarray]


@dataclass(frozen=True)
class SearchInput:
    """What a search request asks (the API's query operations)."""

    query: str
    top_k: int = 5
    alpha: float = DEFAULT_ALPHA
    metadata_filter: dict[str, Any] | None = None
    embedding: list[float] | None = None
    include_internal: bool = False


def query_encode_start(wanted: SearchInput) -> QueryEncoding | None:
    """The query's encode, started now for the turns_search to come, so that the caller's
    reads before it (the sessions searched) run meanwhile; None when that search will not
    encode (keyword only, or a client's vector). The same input is rejected first, as
    turns_search rejects it: nothing is encoded for a request that gets a 400."""
    _search_input_check(
        query=wanted.query,
        top_k=wanted.top_k,
        alpha=wanted.alpha,
        metadata_filter=wanted.metadata_filter,
        embedding=wanted.embedding,
    )
    return _encode_start(query=wanted.query, alpha=wanted.alpha, embedding=wanted.embedding)


def _encode_start(
    *, query: str, alpha: float, embedding: list[float] | None
) -> QueryEncoding | None:
    return None if alpha == 0.0 or embedding else embeddings.query_embed_start(query)


def _search_input_check(
    *,
    query: str,
    top_k: int,
    alpha: float,
    metadata_filter: dict[str, Any] | None,
    embedding: list[float] | None,
) -> tuple[str, list[Any]]:
    """Raises InvalidInput for what turns_search rejects; the filter's SQL and params."""
    search_options_check(query=query, top_k=top_k, alpha=alpha)
    compiled = filter_compile(metadata_filter, column="t.metadata")
    if embedding is not None:
        embedding_check(embedding, where="query")
    return compiled


def session_search(
    *, project: Project, name: str, wanted: SearchInput
) -> tuple[Session, SearchResult]:
    """turns_search over the project's session `name` (NotFound without one). Its query's
    encode starts before the session is read, and runs meanwhile."""
    encoding = query_encode_start(wanted)
    session = session_get(project=project, name=name)
    return session, _searched(session_ids=[session.pk], wanted=wanted, encoding=encoding)


def customer_search(*, project: Project, customer_id: str, wanted: SearchInput) -> SearchResult:
    """turns_search over every session of one customer in the project; its query's encode
    runs while they are found."""
    encoding = query_encode_start(wanted)
    found = customer_sessions(project=project, customer_id=customer_id)
    session_ids = list(found.values_list("pk", flat=True))
    return _searched(session_ids=session_ids, wanted=wanted, encoding=encoding)


def _searched(
    *, session_ids: list[int], wanted: SearchInput, encoding: QueryEncoding | None
) -> SearchResult:
    return turns_search(
        session_ids=session_ids,
        query=wanted.query,
        top_k=wanted.top_k,
        alpha=wanted.alpha,
        metadata_filter=wanted.metadata_filter,
        embedding=wanted.embedding,
        include_internal=wanted.include_internal,
        encoding=encoding,
    )


def turns_search(
    *,
    session_ids: list[int],
    query: str,
    top_k: int = 5,
    alpha: float = DEFAULT_ALPHA,
    metadata_filter: dict[str, Any] | None = None,
    embedding: list[float] | None = None,
    include_internal: bool = False,
    ranking: Ranking = DEFAULT_RANKING,
    encoding: QueryEncoding | None = None,
) -> SearchResult:
    """The shared query service: the API and the console both call this.

    Private notes (Turn.internal) are searched only with `include_internal`:
    the console asks for them, the API only when the bot does. `encoding`: the
    query's encode, started by query_encode_start; else it starts here."""
    started = time.perf_counter()
    filter_sql, filter_params = _search_input_check(
        query=query, top_k=top_k, alpha=alpha, metadata_filter=metadata_filter, embedding=embedding
    )
    if encoding is None:
        encoding = _encode_start(query=query, alpha=alpha, embedding=embedding)
    vector_param: str | None = None
    vector: np.ndarray | None = None
    degraded: str | None = None
    if alpha > 0.0 and embedding:
        vector = np.asarray(embedding, dtype=np.float32)

    # A client's query vector may come from another model than the context vectors.
    context_weight = 0.0 if embedding else ranking.context_weight
    intent = query_intent_read(query=query)
    # A client's vector is scored against the plain vectors alone (context_weight 0).
    plain = embedding is not None
    state = None
    if session_ids and ranking == DEFAULT_RANKING:
        state = sessions_index_read(
            session_ids=session_ids,
            query=query,
            context_weight=ranking.context_weight,
            plain=plain,
        )
    if encoding is not None:
        try:
            vector = encoding()
        except embeddings.ModelUnavailable:
            alpha, degraded = 0.0, KEYWORD_ONLY
    if state is not None and state.indexes is not None:
        hits = _indexed_hits(
            state,
            vector=vector,
            plain=plain,
            alpha=alpha,
            top_k=top_k,
            include_internal=include_internal,
            filter_sql=filter_sql,
            filter_params=filter_params,
            intent=intent,
        )
        return SearchResult(
            docs=hits,
            query=query,
            time_taken_ms=(time.perf_counter() - started) * 1000,
            degraded=degraded,
            served_by="index",
        )
    if vector is not None:
        vector_param = "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"
    named = {
        "vector": vector_param,
        "query": query,
        "session_ids": session_ids,
        "alpha": alpha,
        "top_k": top_k,
        "include_internal": include_internal,
        "context_weight": context_weight,
        "intent_role": intent.role,
        "role_boost": ranking.role_boost,
        "intent_commitment": intent.commitment,
        "commitment_boost": ranking.commitment_boost,
        "intent_fact_kinds": list(intent.fact_kinds),
        "fact_boost": ranking.fact_boost,
        "intent_why": intent.why,
        "why_boost": ranking.why_boost,
        "reply_share": ranking.reply_share,
    }
    sql, params = _with_filter(
        _ranking_sql(alpha, context_weight, ranking.keyword, replies=ranking.reply_share > 0),
        named,
        filter_sql,
        filter_params,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = [_hit(*row) for row in rows]
    return SearchResult(
        docs=hits,
        query=query,
        time_taken_ms=(time.perf_counter() - started) * 1000,
        degraded=degraded,
    )


def _hit(
    doc_id: str,
    text: str,
    metadata: Any,
    seq: int,
    session_name: str,
    score: float,
    via_key: str,
    internal: bool,
) -> Hit:
    return Hit(
        id=doc_id,
        text=text,
        # Django's psycopg setup hands JSONB back as text outside the ORM.
        metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
        score=float(score),
        seq=seq,
        session_name=session_name,
        via_key=via_key,
        internal=internal,
    )


def _indexed_hits(
    state: SearchedState,
    *,
    vector: np.ndarray | None,
    plain: bool,
    alpha: float,
    top_k: int,
    include_internal: bool,
    filter_sql: str,
    filter_params: list[Any],
    intent: QueryIntent,
) -> list[Hit]:
    """The hits ranked by the sessions' in-process indexes (services/search_index.py),
    shown as the indexes hold them; a metadata filter still comes from SQL."""
    assert state.indexes is not None
    filter_seqs: dict[int, list[int]] | None = None
    if filter_sql != "TRUE":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.session_id, t.seq FROM sessions_app_turn t"
                f" WHERE t.session_id = ANY(%s) AND {filter_sql}",
                [list(state.names), *filter_params],
            )
            filter_seqs = {}
            for session_id, seq in cursor.fetchall():
                filter_seqs.setdefault(session_id, []).append(seq)
    ranked = sessions_index_rank(
        indexes=state.indexes,
        vector=vector,
        terms=state.terms,
        alpha=alpha,
        top_k=top_k,
        include_internal=include_internal,
        filter_seqs=filter_seqs,
        intent=intent,
        weights=_INDEX_WEIGHTS,
        plain=plain,
    )
    hits = []
    for turn in ranked:
        doc_id, text, metadata, via_key = turn.index.shown_at(turn.row)
        name = state.names[turn.index.session_id]
        hits.append(
            _hit(doc_id, text, metadata, turn.seq, name, turn.score, via_key, turn.internal)
        )
    # As the SQL orders its top_k: by score, then by place in the thread.
    return sorted(hits, key=lambda hit: (-hit.score, hit.seq))


_INDEX_WEIGHTS = IndexWeights(
    k1=BM25_K1,
    b=BM25_B,
    role_boost=DEFAULT_RANKING.role_boost,
    commitment_boost=DEFAULT_RANKING.commitment_boost,
    fact_boost=DEFAULT_RANKING.fact_boost,
    why_boost=DEFAULT_RANKING.why_boost,
    reply_share=DEFAULT_RANKING.reply_share,
)

# The searched turns: the sessions', less private notes unless they are asked for.
_SCOPE = "t.session_id = ANY(%(session_ids)s) AND (%(include_internal)s OR NOT t.internal)"
# The query's tsquery (any of its words) and its lexemes: the text search
# config's stemming and stop words, the same as the turns' search_vector.
_QUERY_CTE = """
    q AS MATERIALIZED (
        SELECT replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | ')::tsquery AS tq,
               ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', %(query)s))) AS terms
    )"""
_SIMILARITY = "{similarity}"
_PLAIN = "1 - (t.embedding <=> %(vector)s::vector)"
_BLENDED = """1 - ((1 - %(context_weight)s) * (t.embedding <=> %(vector)s::vector)
    + %(context_weight)s * (COALESCE(t.context_embedding, t.embedding) <=> %(vector)s::vector))"""

# BM25 over the searched set (the sessions' turns the filter keeps): IDF from
# how many of them hold each query term, length normalised by their mean
# length in lexemes. One pass reads every searched turn for those statistics;
# term frequencies are read only from the turns that match.
_BM25 = f"""
    stats AS MATERIALIZED (
        SELECT count(*)::float8 AS n, GREATEST(avg(dl), 1)::float8 AS avgdl FROM searched
    ),
    postings AS MATERIALIZED (
        SELECT s.id, s.dl, p.lexeme, COALESCE(array_length(p.positions, 1), 1) AS tf
        FROM searched s, q, unnest(s.matched) AS p
        WHERE s.matched IS NOT NULL AND p.lexeme = ANY(q.terms)
    ),
    df AS (SELECT lexeme, count(*)::float8 AS df FROM postings GROUP BY lexeme),
    keyword AS MATERIALIZED (
        SELECT p.id,
               SUM(ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * p.tf * {BM25_K1 + 1}
                   / (p.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * p.dl / stats.avgdl))) AS rank
        FROM postings p JOIN df USING (lexeme) CROSS JOIN stats
        GROUP BY p.id
    ),
    top AS MATERIALIZED (SELECT NULLIF(MAX(rank), 0) AS rank FROM keyword)"""

# What the query's intent adds to a hybrid score (Ranking's boosts): read from the
# role and the extraction stored with each turn, nothing recomputed.
_PRIOR = """,
               CASE WHEN lower(t.metadata->>'role') = %(intent_role)s
                    THEN %(role_boost)s ELSE 0 END
               + CASE WHEN %(intent_commitment)s AND t.extracted ? 'commitment'
                      THEN %(commitment_boost)s ELSE 0 END
               + CASE WHEN cardinality(%(intent_fact_kinds)s::text[]) > 0 AND EXISTS (
                          SELECT 1 FROM jsonb_array_elements(t.extracted->'facts') AS f
                          WHERE f->>0 = ANY(%(intent_fact_kinds)s::text[]))
                      THEN %(fact_boost)s ELSE 0 END
               + CASE WHEN %(intent_why)s AND t.extracted ? 'cause'
                      THEN %(why_boost)s ELSE 0 END AS prior,
               t.session_id, t.seq, t.internal, lower(t.metadata->>'role') AS role,
               COALESCE(t.extracted ? 'asks', false) AS asks"""

_SEARCHED = """
    searched AS MATERIALIZED (
        SELECT t.id, length(t.search_vector) AS dl{similarity}{prior},
               CASE WHEN t.search_vector @@ q.tq THEN t.search_vector END AS matched
        FROM sessions_app_turn t, q
        WHERE t.session_id = ANY(%(session_ids)s) AND {{filter}}
    ),"""

_CTES = {
    "semantic": f"""
    scored AS (
        SELECT t.id, {_SIMILARITY} AS similarity
        FROM sessions_app_turn t
        WHERE t.session_id = ANY(%(session_ids)s) AND t.embedding IS NOT NULL AND {{filter}}
    )""",
    "keyword bm25": _QUERY_CTE + "," + _SEARCHED.format(similarity="", prior="") + _BM25,
    "hybrid bm25": _QUERY_CTE
    + ","
    + _SEARCHED.format(similarity=f", COALESCE({_SIMILARITY}, 0) AS similarity", prior=_PRIOR)
    + _BM25,
    "keyword ts_rank_cd": _QUERY_CTE
    + """,
    keyword AS MATERIALIZED (
        SELECT t.id, ts_rank_cd(t.search_vector, q.tq) AS rank
        FROM sessions_app_turn t, q
        WHERE t.session_id = ANY(%(session_ids)s) AND t.search_vector @@ q.tq AND {filter}
    ),
    top AS MATERIALIZED (SELECT NULLIF(MAX(rank), 0) AS rank FROM keyword)""",
    # One pass over the session computes both scores; the keyword rank only
    # for rows that match.
    "hybrid ts_rank_cd": _QUERY_CTE
    + f""",
    searched AS MATERIALIZED (
        SELECT t.id, COALESCE({_SIMILARITY}, 0) AS similarity{_PRIOR},
               CASE WHEN t.search_vector @@ q.tq
                    THEN ts_rank_cd(t.search_vector, q.tq) ELSE 0 END AS rank
        FROM sessions_app_turn t, q
        WHERE t.session_id = ANY(%(session_ids)s) AND {{filter}}
    ),
    keyword AS (SELECT id, rank FROM searched),
    top AS MATERIALIZED (SELECT NULLIF(MAX(rank), 0) AS rank FROM searched)""",
}
_SCORES = {
    "semantic": "SELECT id, similarity AS score FROM scored",
    "keyword": "SELECT keyword.id, keyword.rank / top.rank AS score FROM keyword, top",
    "hybrid": """
        SELECT searched.id, searched.session_id, searched.internal, searched.seq,
               searched.role, searched.asks,
               %(alpha)s * searched.similarity
               + (1 - %(alpha)s) * COALESCE(keyword.rank / top.rank, 0)
               + searched.prior AS score
        FROM searched LEFT JOIN keyword USING (id) CROSS JOIN top""",
}
# Ranking.reply_share over the hybrid scores: each turn's predecessor in its session's
# thread (private notes apart: they answer nothing) and the best score of the search.
_REPLIES = """
        SELECT id, score + CASE WHEN previous_asks AND previous_role IS DISTINCT FROM role
                                     AND previous_score >= best
                                THEN %(reply_share)s * GREATEST(previous_score - score, 0)
                                ELSE 0 END AS score
        FROM (
            SELECT id, score, role,
                   lag(score) OVER thread AS previous_score,
                   lag(asks) OVER thread AS previous_asks,
                   lag(role) OVER thread AS previous_role,
                   max(score) OVER () AS best
            FROM ({blended}) AS blended
            WINDOW thread AS (PARTITION BY session_id, internal ORDER BY seq)
        ) AS neighboured"""


def _ranking_sql(alpha: float, context_weight: float, keyword: str, *, replies: bool) -> str:
    # Rank on (id, score) only, then fetch text and metadata for the top_k
    # rows: carrying whole rows through the sort costs more than the distances.
    mode = "semantic" if alpha == 1.0 else "keyword" if alpha == 0.0 else "hybrid"
    scores = _SCORES[mode]
    if mode == "hybrid" and replies:
        scores = _REPLIES.format(blended=scores)
    ctes = _CTES[mode if mode == "semantic" else f"{mode} {keyword}"]
    ctes = ctes.replace(_SIMILARITY, _BLENDED if context_weight else _PLAIN)
    # The searched turns: the sessions', less private notes unless they are asked for.
    ctes = ctes.replace("t.session_id = ANY(%(session_ids)s)", _SCOPE)
    return f"""
        WITH {ctes},
        ranked AS ({scores} ORDER BY score DESC, id LIMIT %(top_k)s)
        SELECT t.doc_id, t.text, t.metadata, t.seq, s.name, ranked.score,
               t.written_by_key_prefix, t.internal
        FROM ranked
        JOIN sessions_app_turn t ON t.id = ranked.id
        JOIN sessions_app_session s ON s.id = t.session_id
        ORDER BY ranked.score DESC, t.seq
    """


def _with_filter(
    sql: str, named: dict[str, Any], filter_sql: str, filter_params: list[Any]
) -> tuple[str, dict[str, Any]]:
    """Turn the filter's positional %s into named parameters f0, f1, …."""
    pieces = filter_sql.split("%s")
    rebuilt = pieces[0]
    params = dict(named)
    for index, piece in enumerate(pieces[1:]):
        params[f"f{index}"] = filter_params[index]
        rebuilt += f"%(f{index})s" + piece
    return sql.replace("{filter}", rebuilt), params
