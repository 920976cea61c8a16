"""Figures for the supervisor dashboard of one project over a window (24h, 7d, 30d).

Definitions (kept here so the page, its tests and its readers agree):
- An escalation is a handoff to the human queue (to humans, a team or a named
  specialist), whether a bot pushed it or a specialist transferred it.
- Time to claim: escalation created -> claimed, for escalations created in
  the window.
- Time to resolve: the escalation that began the human episode (the first
  one since the session was last with a bot or resolved; transfers between
  humans do not restart it) -> the resolution, for resolutions in the window.
- Channel pair: from = the handoff's from_channel, else the channel of the last
  turn at the handoff point; to = the channel of the first turn after the
  handoff point, or "pending" while nobody has written since (both kept on the
  handoff as turns are written). Resolutions are not handoffs between channels
  and are left out.
- Hand-back: a specialist handing the session to a bot.
- Per specialist: claims in the window, their median time to claim, and the
  specialist's resolutions and hand-backs in the window.

Every figure is aggregated in SQL, in one statement that reads the window's handoffs
once (the project's ranges of the (project, created_at) and (project, claimed_at)
indexes); the waiting list shows the WAITING_SHOWN oldest and counts the rest.
tests/dashboard_reference.py keeps the earlier per-handoff Python computation,
and the tests require the same figures from both.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from sessions_app.models import HandoffTarget, Project, Session, SessionStatus

WINDOWS: dict[str, tuple[str, timedelta]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_WINDOW = "7d"
ESCALATION_KINDS = (HandoffTarget.HUMANS, HandoffTarget.TEAM, HandoffTarget.USER)
# Upper edges in seconds; the last bucket is open-ended.
BUCKETS: list[tuple[float, str]] = [
    (60, "< 1 min"),
    (300, "1-5 min"),
    (900, "5-15 min"),
    (3600, "15-60 min"),
    (4 * 3600, "1-4 h"),
    (24 * 3600, "4-24 h"),
    (math.inf, "≥ 24 h"),
]
PENDING = "pending"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Count:
    label: str
    count: int


@dataclass(frozen=True)
class Distribution:
    buckets: list[Count]
    count: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class WaitingEscalation:
    name: str
    waiting_since: datetime | None
    age_seconds: float
    routed_to: str


@dataclass(frozen=True)
class SpecialistRow:
    username: str
    claims: int
    median_claim_seconds: float | None
    resolutions: int
    hand_backs: int


@dataclass(frozen=True)
class DashboardFigures:
    window: str
    window_label: str
    since: datetime
    now: datetime
    # The oldest WAITING_SHOWN, and how many wait in all.
    waiting: list[WaitingEscalation]
    waiting_count: int
    escalations: int
    unclaimed: int
    time_to_claim: Distribution
    time_to_resolve: Distribution
    channel_pairs: list[Count]
    hand_backs: int
    hand_backs_by_bot: list[Count]
    specialists: list[SpecialistRow]


def window_check(window: str | None) -> str:
    return window if window in WINDOWS else DEFAULT_WINDOW


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: a value that actually occurred."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution_build(durations: list[float]) -> Distribution:
    counts = [0] * len(BUCKETS)
    for seconds in durations:
        index = next(i for i, (edge, _) in enumerate(BUCKETS) if seconds < edge)
        counts[index] += 1
    ordered = sorted(durations)
    return Distribution(
        buckets=[Count(label, n) for (_, label), n in zip(BUCKETS, counts, strict=True)],
        count=len(ordered),
        median_seconds=statistics.median(ordered) if ordered else None,
        p90_seconds=_percentile(ordered, 0.9),
    )


WAITING_SHOWN = 20
_ESCALATIONS = "('humans', 'team', 'user')"
# Nearest-rank p90 is percentile_disc; statistics.median is percentile_cont(0.5).
_DISTRIBUTION = """
    SELECT json_build_array(
        count(*),
        percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
        percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds),
        {buckets})
    FROM ({durations}) d
"""


def _distribution_sql(durations_sql: str) -> str:
    """One JSON array: count, median, p90, then the count in each bucket."""
    edges = [edge for edge, _ in BUCKETS]
    buckets = (
        ", ".join(
            f"count(*) FILTER (WHERE seconds >= {low} AND seconds < {high})"
            for low, high in zip([-math.inf, *edges[:-1]], edges, strict=True)
        )
        .replace("-inf", "'-infinity'")
        .replace(" inf", " 'infinity'")
    )
    return _DISTRIBUTION.format(buckets=buckets, durations=durations_sql)


def _distribution(values: list[Any]) -> Distribution:
    count, median, p90, *counts = values
    return Distribution(
        buckets=[Count(label, n) for (_, label), n in zip(BUCKETS, counts, strict=True)],
        count=count,
        median_seconds=float(median) if median is not None else None,
        p90_seconds=float(p90) if p90 is not None else None,
    )


def _waiting(project: Project, now: datetime) -> tuple[list[WaitingEscalation], int]:
    waiting = Session.objects.filter(project=project, status=SessionStatus.WAITING)
    sessions = waiting.select_related("queue_team", "queue_user").order_by("waiting_since", "id")
    rows = []
    for session in sessions[:WAITING_SHOWN]:
        if session.queue_user is not None:
            routed = session.queue_user.get_username()
        elif session.queue_team is not None:
            routed = f"team {session.queue_team.name}"
        else:
            routed = "anyone"
        age = (now - session.waiting_since).total_seconds() if session.waiting_since else 0.0
        rows.append(WaitingEscalation(session.name, session.waiting_since, max(age, 0.0), routed))
    count = len(rows) if len(rows) < WAITING_SHOWN else waiting.count()
    return rows, count


# The project's handoffs made or claimed in the window, read once (the ranges of the
# (project, created_at) and (project, claimed_at) indexes) for every figure below.
_WINDOW = """
    w AS MATERIALIZED (
        SELECT h.id, h.to_kind, h.created_at, h.claimed_at, h.claimed_by_id, h.by_user_id,
               h.to_target, h.from_channel, h.channel_before, h.channel_after,
               -- date_part gives float8 (extract gives numeric, several times slower), once a row.
               date_part('epoch', h.claimed_at - h.created_at) AS claim_seconds,
               date_part('epoch', h.created_at - h.episode_started_at) AS resolve_seconds,
               h.created_at >= %(since)s AND h.created_at <= %(now)s AS made
        FROM sessions_app_handoff h
        WHERE h.project_id = %(project)s
          AND (h.created_at >= %(since)s AND h.created_at <= %(now)s
               OR h.claimed_at >= %(since)s AND h.claimed_at <= %(now)s)
    )
"""
# Handoffs made in the window.
_IN_WINDOW = "FROM w h WHERE h.made"
_CLAIM_SECONDS = f"""
    SELECT h.claim_seconds AS seconds {_IN_WINDOW}
    AND h.to_kind IN {_ESCALATIONS} AND h.claimed_at IS NOT NULL
"""
# From the first escalation since the session was last resolved or with a bot, kept on
# each resolution as it is recorded (Handoff.episode_started_at).
_RESOLVE_SECONDS = f"""
    SELECT h.resolve_seconds AS seconds {_IN_WINDOW}
    AND h.to_kind = 'resolved' AND h.resolve_seconds IS NOT NULL
"""
# The channels around each handoff point are kept on write (services/channels.py).
_CHANNEL_PAIRS = f"""
    SELECT COALESCE(json_agg(json_build_array(source, target, n)), '[]'::json) FROM (
        SELECT COALESCE(NULLIF(h.from_channel, ''), NULLIF(h.channel_before, ''), %(unknown)s)
                   AS source,
               COALESCE(NULLIF(h.channel_after, ''), %(pending)s) AS target, count(*) AS n
        {_IN_WINDOW} AND h.to_kind <> 'resolved'
        GROUP BY 1, 2
    ) pairs
"""
_COUNTS = f"""
    SELECT json_build_array(
        count(*) FILTER (WHERE h.to_kind IN {_ESCALATIONS}),
        count(*) FILTER (WHERE h.to_kind IN {_ESCALATIONS} AND h.claimed_at IS NOT NULL))
    {_IN_WINDOW}
"""
_HAND_BACKS = f"""
    SELECT COALESCE(json_agg(json_build_array(bot, n) ORDER BY n DESC, first_at, first_id),
                    '[]'::json)
    FROM (
        SELECT h.to_target AS bot, count(*) AS n, min(h.created_at) AS first_at,
               min(h.id) AS first_id
        {_IN_WINDOW} AND h.to_kind = 'bot' AND h.by_user_id IS NOT NULL
        GROUP BY h.to_target
    ) bots
"""
# Claims by when they happened; resolutions and hand-backs by when they were made.
_SPECIALISTS = """
    SELECT COALESCE(json_agg(json_build_array(
               u.username, COALESCE(c.claims, 0), c.median,
               COALESCE(a.resolutions, 0), COALESCE(a.hand_backs, 0))), '[]'::json)
    FROM claims c FULL JOIN acts a ON a.user_id = c.user_id
    JOIN auth_user u ON u.id = COALESCE(c.user_id, a.user_id)
    WHERE COALESCE(c.claims, 0) + COALESCE(a.resolutions, 0) + COALESCE(a.hand_backs, 0) > 0
"""
_FIGURES = f"""
    WITH {_WINDOW},
    claims AS (
        SELECT h.claimed_by_id AS user_id, count(*) AS claims,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY h.claim_seconds) AS median
        FROM w h
        WHERE h.to_kind IN {_ESCALATIONS}
          AND h.claimed_at >= %(since)s AND h.claimed_at <= %(now)s
          AND h.claimed_by_id IS NOT NULL
        GROUP BY 1
    ),
    acts AS (
        SELECT h.by_user_id AS user_id,
               count(*) FILTER (WHERE h.to_kind = 'resolved') AS resolutions,
               count(*) FILTER (WHERE h.to_kind = 'bot') AS hand_backs
        {_IN_WINDOW} AND h.by_user_id IS NOT NULL AND h.to_kind IN ('resolved', 'bot')
        GROUP BY 1
    )
    SELECT ({_COUNTS}), ({_distribution_sql(_CLAIM_SECONDS)}),
           ({_distribution_sql(_RESOLVE_SECONDS)}), ({_CHANNEL_PAIRS}), ({_HAND_BACKS}),
           ({_SPECIALISTS})
"""


def dashboard_figures(
    *, project: Project, window: str, now: datetime | None = None
) -> DashboardFigures:
    now = now or timezone.now()
    window = window_check(window)
    label, span = WINDOWS[window]
    since = now - span
    params: dict[str, Any] = {
        "project": project.pk,
        "since": since,
        "now": now,
        "unknown": UNKNOWN,
        "pending": PENDING,
    }
    # One statement: the window's handoffs are read once, whatever the number of figures.
    with connection.cursor() as cursor:
        cursor.execute(_FIGURES, params)
        counts, claim, resolve, pair_rows, bot_rows, specialist_rows = cursor.fetchone()
    escalations, claimed = counts
    pairs = [Count(f"{source} → {target}", n) for source, target, n in pair_rows]
    hand_backs = [Count(bot or "bot", n) for bot, n in bot_rows]
    specialists = [
        SpecialistRow(
            username=name,
            claims=claims,
            median_claim_seconds=float(median) if median is not None else None,
            resolutions=resolutions,
            hand_backs=handed,
        )
        for name, claims, median, resolutions, handed in specialist_rows
    ]
    waiting, waiting_count = _waiting(project, now)
    return DashboardFigures(
        window=window,
        window_label=label,
        since=since,
        now=now,
        waiting=waiting,
        waiting_count=waiting_count,
        escalations=escalations,
        unclaimed=escalations - claimed,
        time_to_claim=_distribution(claim),
        time_to_resolve=_distribution(resolve),
        channel_pairs=sorted(pairs, key=lambda c: (-c.count, c.label)),
        hand_backs=sum(c.count for c in hand_backs),
        hand_backs_by_bot=hand_backs,
        specialists=sorted(specialists, key=lambda r: (-r.claims, r.username)),
    )
