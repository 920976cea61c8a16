"""The scale benchmark's data, generated in SQL (generate_series), not by the model.

One project with `sessions` ordinary sessions (5-33 turns each, about 19 on
average) plus three long ones, `big-1k`, `big-10k` and `big-50k`. Every
value is a hash of the session's name and the turn's number, so a small and
a big database hold the same long sessions turn for turn, and a reload gives
the same data. Turns are inserted in time order, so a long session's turns lie
scattered among everyone else's, as they would in production.

Embeddings are random unit vectors (a pool of 20,000, each turn taking one by
hash; the context vector is the same one) and no turn has extracted facts:
the figures measure storage and scans, not ranking quality. Both are filled
at load so no embedding worker or data migration has a backlog to work off.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.db import connection

BIG_SESSIONS = {"big-1k": 1_000, "big-10k": 10_000, "big-50k": 50_000}
VECTOR_POOL = 20_000
CHANNELS = ["voice", "chat", "email", "sms"]
CUSTOMER_LINES = [
    "I was charged {amount} twice for my {product} subscription this month.",
    "My order {order} still hasn't arrived, the tracking page says it's stuck in {city}.",
    "I can't log in to {product}; the password reset email never comes.",
    "The {product} app crashes every time I try to sync my {thing}.",
    "Can I upgrade to the {plan} plan without losing my {thing}?",
    "I'd like to cancel {product} and get a refund for the last {amount}.",
    "Where can I download the invoice for order {order}?",
    "Two-factor codes by SMS stopped arriving after I moved to {city}.",
    "This is the third time I'm calling about {order}, I want a supervisor.",
    "Your {product} update deleted my {thing}, can you restore them?",
]
AGENT_LINES = [
    "I can see the duplicate {amount} charge on {product}; I've started a refund.",
    "The refund of {amount} was approved and should post in 3-5 business days.",
    "Order {order} is delayed at the {city} depot; a new tracking number is on its way.",
    "I've sent a fresh password reset link, valid for 30 minutes.",
    "Please update {product} to the latest version and sync your {thing} again.",
    "Your account is now on the {plan} plan; your {thing} carried over.",
    "The invoice for order {order} is attached and also available under Billing.",
    "I'm escalating this to a supervisor with the full history of {order}.",
    "Engineering confirmed the {product} sync bug; a fix ships this week.",
    "I've restored your {thing} from last night's backup.",
]
CLOSERS = [
    "",
    " It's urgent, I travel on Friday.",
    " Thanks for your help.",
    " My account number is {order}.",
    " Is there anything else I can help with?",
    " You'll get an email confirmation shortly.",
]
FILLERS = {
    "amount": ["$49.99", "$12.00", "$199.00", "$7.50", "$89.90", "$24.99"],
    "product": ["Moss Notes", "Moss Drive", "Moss Mail", "Moss Calendar", "Moss Photos"],
    "order": [f"#{n}" for n in range(48_100, 48_400, 7)],
    "city": ["Leeds", "Denver", "Lyon", "Osaka", "Porto", "Austin", "Graz"],
    "thing": ["notes", "contacts", "photos", "calendars", "playlists", "files"],
    "plan": ["Pro", "Team", "Family", "annual", "Business"],
}
REASONS = [
    "customer asked for a human",
    "refund above the bot's limit",
    "repeated failed logins",
    "angry customer, third contact",
    "billing dispute",
]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _functions_sql() -> str:
    lines = f"CASE WHEN customer THEN {_array(CUSTOMER_LINES)} ELSE {_array(AGENT_LINES)} END"
    text = f"bench.pick({lines}, k, 1)"
    text += f" || bench.pick({_array(CLOSERS)}, k, 2)"
    for salt, (name, values) in enumerate(FILLERS.items(), start=3):
        text = f"replace({text}, '{{{name}}}', bench.pick({_array(values)}, k, {salt}))"
    return f"""
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.u(x bigint, salt bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(x, salt) & 4294967295)::float8 / 4294967296 $$;
CREATE OR REPLACE FUNCTION bench.pick(arr text[], x bigint, salt bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT arr[1 + floor(bench.u(x, salt) * array_length(arr, 1))::int] $$;
CREATE OR REPLACE FUNCTION bench.turn_text(k bigint, customer boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT {text} $$;
"""


def _vectors_sql() -> str:
    return f"""
DROP TABLE IF EXISTS bench.vec;
CREATE TABLE bench.vec AS
WITH raw AS (
    SELECT i, array_agg(bench.u(i * 384 + d, 7) - 0.5 ORDER BY d) AS a
    FROM generate_series(0, {VECTOR_POOL - 1}) i, generate_series(0, 383) d
    GROUP BY i
)
SELECT i, l2_normalize(a::vector(384)) AS v FROM raw;
ALTER TABLE bench.vec ADD PRIMARY KEY (i);
"""


# Ordinary sessions: status by hash (4% waiting, 2% held, 60% resolved, the rest
# with a bot), created over the last 90 days, one turn every 40 seconds.
_SESSIONS_SQL = """
INSERT INTO sessions_app_session (project_id, name, model_id, metadata, status, holder_id,
    holder_label, waiting_since, version, doc_count, last_seq, created_at, updated_at, channels)
SELECT %(project)s, name, 'all-MiniLM-L6-v2',
    jsonb_build_object('customer_id', 'cust-' || (i %% 20000), 'customer_name',
                       'Customer ' || (i %% 20000)),
    CASE WHEN u < 0.04 THEN 'waiting' WHEN u < 0.06 THEN 'held'
         WHEN u < 0.66 THEN 'resolved' ELSE 'bot' END,
    NULL, CASE WHEN u >= 0.66 THEN 'bench-bot' ELSE '' END, NULL, 0, n, n,
    now() - interval '90 days' * bench.u(i, 12),
    now() - interval '90 days' * bench.u(i, 12) + interval '40 seconds' * n, '{}'
FROM (
    SELECT i, 's-' || lpad(i::text, 6, '0') AS name, bench.u(i, 11) AS u,
           5 + floor(bench.u(i, 13) * 29)::int AS n
    FROM generate_series(1, %(sessions)s) i
) g;
INSERT INTO sessions_app_session (project_id, name, model_id, metadata, status, holder_label,
    version, doc_count, last_seq, created_at, updated_at, channels)
SELECT %(project)s, name, 'all-MiniLM-L6-v2',
    jsonb_build_object('customer_id', 'cust-' || name), 'bot', 'bench-bot', 0, n, n,
    now() - interval '60 days', now() - interval '1 minute', '{}'
FROM unnest(%(big_names)s::text[], %(big_sizes)s::int[]) AS b(name, n);
"""

_TURNS_SQL = """
DROP TABLE IF EXISTS bench.stage;
CREATE UNLOGGED TABLE bench.stage AS
SELECT s.id AS session_id, k AS seq, abs(hashtext(s.name))::bigint * 100003 + k AS h,
       s.created_at + k * CASE WHEN s.name LIKE 'big-%%' THEN interval '59 days' / s.doc_count
                               ELSE interval '40 seconds' END AS at
FROM sessions_app_session s, generate_series(1, s.doc_count) k
WHERE s.project_id = %(project)s
ORDER BY at;
INSERT INTO sessions_app_turn (session_id, doc_id, seq, text, metadata, embedding,
    context_embedding, extracted, model_id, written_by_key_prefix, internal, created_at,
    updated_at)
SELECT session_id, 'turn-' || seq, seq, bench.turn_text(h, seq %% 2 = 1),
    jsonb_build_object(
        'channel', (%(channels)s::text[])[1 + ((h / 100003 + seq / 8) %% 4)::int],
        'role', CASE WHEN seq %% 2 = 1 THEN 'customer' ELSE 'agent' END,
        'author', CASE WHEN seq %% 2 = 1 THEN 'customer' ELSE 'bench-bot' END),
    vec.v, vec.v, '{}'::jsonb, 'all-MiniLM-L6-v2', %(prefix)s, false, at, at
FROM bench.stage
CROSS JOIN LATERAL (
    SELECT v FROM bench.vec WHERE i = (hashint8extended(h, 5) & 1048575) %% %(pool)s
) vec;
INSERT INTO sessions_app_auditevent (project_id, session_id, session_name, kind, actor_key_id,
    actor_label, channel, device, data, created_at)
SELECT %(project)s, st.session_id, s.name, 'turns.added', %(key)s, 'bench-bot', 'chat', '',
    jsonb_build_object('added', jsonb_agg('turn-' || st.seq ORDER BY st.seq),
                       'updated', '[]'::jsonb, 'seqs', jsonb_agg(st.seq ORDER BY st.seq)),
    min(st.at)
FROM bench.stage st JOIN sessions_app_session s ON s.id = st.session_id
GROUP BY st.session_id, s.name, (st.seq - 1) / 10
ORDER BY min(st.at);
DROP TABLE bench.stage;
"""

# Handoffs of ordinary sessions: an escalation halfway (claimed unless still
# waiting), then a resolution, or for a third of the bot sessions a hand-back.
_HANDOFFS_SQL = """
DROP TABLE IF EXISTS bench.h;
CREATE UNLOGGED TABLE bench.h AS
SELECT s.id AS session_id, s.status, s.doc_count AS n, s.created_at,
       (%(agents)s::bigint[])[1 + (s.id %% cardinality(%(agents)s::bigint[]))::int] AS agent,
       bench.u(s.id, 21) AS u
FROM sessions_app_session s
WHERE s.project_id = %(project)s AND s.name NOT LIKE 'big-%%'
  AND (s.status <> 'bot' OR bench.u(s.id, 22) < 0.33);
INSERT INTO sessions_app_handoff (session_id, project_id, job_id, version, doc_count, last_seq,
    from_agent, from_channel, channel_before, to_kind, to_target, reason, by_key_id, created_at,
    claimed_at, claimed_by_id)
SELECT session_id, %(project)s, gen_random_uuid(), 1, n / 2, n / 2, 'bench-bot',
    (%(channels)s::text[])[1 + (session_id %% 4)::int], '', 'humans', '',
    bench.pick(%(reasons)s::text[], session_id, 23), %(key)s,
    created_at + interval '40 seconds' * (n / 2),
    CASE WHEN status <> 'waiting'
         THEN created_at + interval '40 seconds' * (n / 2) + interval '30 minutes' * u END,
    CASE WHEN status <> 'waiting' THEN agent END
FROM bench.h;
INSERT INTO sessions_app_handoff (session_id, project_id, job_id, version, doc_count, last_seq,
    from_agent, from_channel, channel_before, to_kind, to_target, reason, by_user_id, created_at)
SELECT session_id, %(project)s, gen_random_uuid(), 2, n, n, '', 'chat', '',
    CASE WHEN status = 'resolved' THEN 'resolved' ELSE 'bot' END,
    CASE WHEN status = 'resolved' THEN '' ELSE 'bench-bot' END, '', agent,
    created_at + interval '40 seconds' * n
FROM bench.h WHERE status IN ('resolved', 'bot');
UPDATE sessions_app_session s
SET version = last.version, last_handoff_id = last.id,
    waiting_since = CASE WHEN s.status = 'waiting' THEN last.created_at END,
    holder_id = CASE WHEN s.status = 'held' THEN h.agent END
FROM bench.h h,
     LATERAL (SELECT id, version, created_at FROM sessions_app_handoff x
              WHERE x.session_id = h.session_id ORDER BY version DESC LIMIT 1) last
WHERE s.id = h.session_id;
DROP TABLE bench.h;
"""


def scale_load(
    *, project_id: int, key_id: int, key_prefix: str, agents: list[int], sessions: int
) -> None:
    """Fill the project: sessions, turns, audit events and handoffs (minutes per million turns)."""
    params: dict[str, Any] = {
        "project": project_id,
        "key": key_id,
        "prefix": key_prefix,
        "agents": agents,
        "sessions": sessions,
        "big_names": list(BIG_SESSIONS),
        "big_sizes": list(BIG_SESSIONS.values()),
        "channels": CHANNELS,
        "reasons": REASONS,
        "pool": VECTOR_POOL,
    }
    channels_backfill = import_module(
        "sessions_app.migrations.0009_channel_lists"
    ).CHANNELS_BACKFILL
    handoff_channels = import_module(
        "sessions_app.migrations.0013_handoff_channels"
    ).HANDOFF_CHANNELS_BACKFILL
    handoff_episodes = import_module(
        "sessions_app.migrations.0017_handoff_episode_started_at"
    ).HANDOFF_EPISODES_FILL
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
        cursor.execute(_functions_sql())
        for label, sql in (
            ("vectors", _vectors_sql()),
            ("sessions", _SESSIONS_SQL),
            ("turns and audit events", _TURNS_SQL),
            ("handoffs", _HANDOFFS_SQL),
            # The channel lists turns_upsert keeps on write, as migration 0009 fills them.
            ("channel lists", channels_backfill),
            ("handoff channels", handoff_channels),
            # Each escalation's and resolution's episode start, as handoff_record keeps it.
            ("handoff episodes", handoff_episodes),
        ):
            print(f"  loading {label}…", flush=True)
            cursor.execute(sql, params if "%(" in sql else None)
        cursor.execute("VACUUM ANALYZE")
