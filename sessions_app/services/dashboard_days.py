"""The dashboard's figures in parts: per UTC day, kept for past days (DashboardDay).

A 30-day window of a busy project holds tens of thousands of handoffs; reading them
all on every view costs what the table holds, not what the page shows. So a window
is cut into whole past days, whose figures are stored the first time a dashboard
needs them, and the rest (the window's first part-day and today so far), read from
the handoffs each time. Days up to yesterday are stored; today changes all the time.

A stored day stays right whatever changes its handoffs (services, admin, SQL): a
trigger on the handoff table (migration 0018) deletes a day's row when a handoff made
or claimed that day is inserted, updated or deleted, and the next view computes it
again. A view stores a day only under exclusive advisory locks on it and on its
project, taken without waiting; a writer holds the day's key shared until it commits
(past its first 64 handoff dates in one transaction, the project's key), so a day with
an uncommitted change is computed for the view but not stored.

Durations (time to claim, time to resolve, each specialist's time to claim) are kept
as values while a day has up to EXACT_KEPT of them; past that, as counts in buckets
2% wide on a logarithmic scale, so a median or p90 over busy days is within 1% of the
exact one. The chart's buckets are always exact counts.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from sessions_app.models import DashboardDay, Project

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
_EDGES = np.array([edge for edge, _ in BUCKETS[:-1]])
# A channel pair's ends when a handoff's channel is not known, or nobody has written since.
PENDING = "pending"
UNKNOWN = "unknown"
# A day keeps this many durations of a series as they are; more become bucket counts.
EXACT_KEPT = 32
# Bucket i holds durations in (SMALLEST * GAMMA**(i-1), SMALLEST * GAMMA**i]; bucket 0
# those up to SMALLEST; its representative is within (GAMMA-1)/(GAMMA+1) < 1% of each.
SMALLEST = 0.001
GAMMA = 1.02
HIST_SIZE = 1400  # up to about 12 years
_REPRESENTATIVE = np.concatenate(
    [[0.0], SMALLEST * GAMMA ** np.arange(1, HIST_SIZE) * 2 / (GAMMA + 1)]
)
# Days up to this many days before today (UTC) are stored.
STORED_AFTER_DAYS = 1
# The stored form's version: rows of another one are computed again, as if missing.
# Rows keep counts per BUCKETS entry and per log bucket (SMALLEST, GAMMA), and the pair
# labels (PENDING, UNKNOWN): changing any of them needs a new version.
STORED_FORMAT = 1
_ESCALATIONS = "('humans', 'team', 'user')"


@dataclass
class Durations:
    """A set of durations in seconds: exact values, and bucket counts of the rest."""

    values: list[float] = field(default_factory=list)
    # Bucket counts as (first bucket, counts from it): one per stored day, added on use.
    runs: list[tuple[int, np.ndarray]] = field(default_factory=list)
    chart: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        chart = np.bincount(np.searchsorted(_EDGES, values, side="right"), minlength=len(BUCKETS))
        return cls(values=list(values), chart=[int(n) for n in chart])

    @property
    def count(self) -> int:
        return sum(self.chart)

    def add(self, other: Durations) -> None:
        self.values.extend(other.values)
        self.runs.extend(other.runs)
        self.chart = [a + b for a, b in zip(self.chart, other.chart, strict=True)]

    def _counts(self, *, values: bool = True) -> np.ndarray:
        """Every count in one array: the stored runs', and (`values`) the exact values'
        buckets."""
        counts = np.zeros(HIST_SIZE, dtype=np.int64)
        for first, run in self.runs:
            counts[first : first + len(run)] += run
        if values and self.values:
            scaled = np.maximum(np.asarray(self.values) / SMALLEST, 1.0)
            index = np.minimum(np.ceil(np.log(scaled) / math.log(GAMMA)), HIST_SIZE - 1)
            counts += np.bincount(index.astype(np.int64), minlength=HIST_SIZE)
        return counts

    def quantiles(self) -> tuple[float | None, float | None]:
        """The median (the mean of the middle two for an even count, as
        statistics.median) and the nearest-rank p90: a value that occurred."""
        values = np.asarray(self.values, dtype=np.float64)
        weights = np.ones(len(values), dtype=np.int64)
        if self.runs:
            counts = self._counts(values=False)
            filled = np.nonzero(counts)[0]
            values = np.concatenate([values, _REPRESENTATIVE[filled]])
            weights = np.concatenate([weights, counts[filled]])
        if not len(values):
            return None, None
        order = np.argsort(values, kind="stable")
        values, ranks = values[order], np.cumsum(weights[order])
        total = int(ranks[-1])

        def at(rank: int) -> float:
            return float(values[np.searchsorted(ranks, rank)])

        half = total // 2
        median = at(half + 1) if total % 2 else (at(half) + at(half + 1)) / 2
        return median, at(max(1, math.ceil(0.9 * total)))

    def stored(self) -> dict[str, Any]:
        if not self.runs and len(self.values) <= EXACT_KEPT:
            return {"chart": self.chart, "values": self.values}
        counts = self._counts()
        filled = np.nonzero(counts)[0]
        first, last = int(filled[0]), int(filled[-1])
        run = counts[first : last + 1]
        # In the narrowest unsigned integers that hold them (one byte, on most days).
        width = next(w for w in (1, 2, 4) if run.max() < 256**w)
        packed = run.astype(f"<u{width}").tobytes()
        return {
            "chart": self.chart,
            "from": first,
            "width": width,
            "counts": base64.b64encode(packed).decode(),
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Durations:
        if "values" in data:
            return cls(values=list(data["values"]), chart=list(data["chart"]))
        run = np.frombuffer(base64.b64decode(data["counts"]), dtype=f"<u{data['width']}")
        return cls(runs=[(data["from"], run)], chart=list(data["chart"]))


@dataclass
class Tally:
    """The dashboard's figures over a part of a window, in a form that adds up."""

    escalations: int = 0
    claimed: int = 0  # of those escalations
    claim: Durations = field(default_factory=Durations)
    resolve: Durations = field(default_factory=Durations)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Hand-backs per bot: count, first time (epoch seconds), first id.
    bots: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    # Per user id: resolutions and hand-backs made; claims made (their times to claim).
    acts: dict[int, tuple[int, int]] = field(default_factory=dict)
    claims: dict[int, Durations] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        self.escalations += other.escalations
        self.claimed += other.claimed
        self.claim.add(other.claim)
        self.resolve.add(other.resolve)
        self.pairs.update(other.pairs)
        for bot, (n, first_at, first_id) in other.bots.items():
            m, at, pk = self.bots.get(bot, (0, math.inf, 2**63))
            self.bots[bot] = (m + n, min(at, first_at), min(pk, first_id))
        for user, (resolutions, hand_backs) in other.acts.items():
            r, h = self.acts.get(user, (0, 0))
            self.acts[user] = (r + resolutions, h + hand_backs)
        for user, durations in other.claims.items():
            self.claims.setdefault(user, Durations()).add(durations)

    def stored(self) -> dict[str, Any]:
        return {
            "format": STORED_FORMAT,
            "escalations": self.escalations,
            "claimed": self.claimed,
            "claim": self.claim.stored(),
            "resolve": self.resolve.stored(),
            "pairs": [[source, target, n] for (source, target), n in self.pairs.items()],
            "bots": [[bot, *figures] for bot, figures in self.bots.items()],
            "acts": [[user, *figures] for user, figures in self.acts.items()],
            "claims": [[user, durations.stored()] for user, durations in self.claims.items()],
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Tally:
        return cls(
            escalations=data["escalations"],
            claimed=data["claimed"],
            claim=Durations.load(data["claim"]),
            resolve=Durations.load(data["resolve"]),
            pairs=Counter({(source, target): n for source, target, n in data["pairs"]}),
            bots={bot: (n, at, pk) for bot, n, at, pk in data["bots"]},
            acts={user: (r, h) for user, r, h in data["acts"]},
            claims={user: Durations.load(stored) for user, stored in data["claims"]},
        )


# The project's handoffs made or claimed in [lo, hi), read once (the ranges of the
# (project, created_at) and (project, claimed_at) indexes), each figure per UTC day:
# made that day, or for claims, claimed that day.
_PARTS = f"""
WITH w AS MATERIALIZED (
    SELECT h.id, h.to_kind, h.created_at, h.claimed_by_id, h.by_user_id, h.to_target,
           COALESCE(NULLIF(h.from_channel, ''), NULLIF(h.channel_before, ''), %(unknown)s)
               AS source,
           COALESCE(NULLIF(h.channel_after, ''), %(pending)s) AS target,
           -- date_part gives float8 (extract gives numeric, several times slower).
           date_part('epoch', h.claimed_at - h.created_at) AS claim_seconds,
           date_part('epoch', h.created_at - h.episode_started_at) AS resolve_seconds,
           h.to_kind IN {_ESCALATIONS} AS escalation,
           CASE WHEN h.created_at >= %(lo)s AND h.created_at < %(hi)s
                THEN (h.created_at AT TIME ZONE 'UTC')::date END AS made_day,
           CASE WHEN h.claimed_at >= %(lo)s AND h.claimed_at < %(hi)s
                THEN (h.claimed_at AT TIME ZONE 'UTC')::date END AS claim_day
    FROM sessions_app_handoff h
    WHERE h.project_id = %(project)s
      AND (h.created_at >= %(lo)s AND h.created_at < %(hi)s
           OR h.claimed_at >= %(lo)s AND h.claimed_at < %(hi)s)
)
SELECT 'made', made_day, json_build_array(
    count(*) FILTER (WHERE escalation),
    count(*) FILTER (WHERE escalation AND claim_seconds IS NOT NULL),
    COALESCE(array_agg(claim_seconds)
             FILTER (WHERE escalation AND claim_seconds IS NOT NULL), '{{}}'),
    COALESCE(array_agg(resolve_seconds)
             FILTER (WHERE to_kind = 'resolved' AND resolve_seconds IS NOT NULL), '{{}}'))
FROM w WHERE made_day IS NOT NULL GROUP BY made_day
UNION ALL
-- The channels around each handoff point are kept on write (services/channels.py).
SELECT 'pair', made_day, json_build_array(source, target, count(*))
FROM w WHERE made_day IS NOT NULL AND to_kind <> 'resolved'
GROUP BY made_day, source, target
UNION ALL
SELECT 'bot', made_day, json_build_array(
    to_target, count(*), date_part('epoch', min(created_at)), min(id))
FROM w WHERE made_day IS NOT NULL AND to_kind = 'bot' AND by_user_id IS NOT NULL
GROUP BY made_day, to_target
UNION ALL
SELECT 'act', made_day, json_build_array(
    by_user_id, count(*) FILTER (WHERE to_kind = 'resolved'),
    count(*) FILTER (WHERE to_kind = 'bot'))
FROM w WHERE made_day IS NOT NULL AND by_user_id IS NOT NULL AND to_kind IN ('resolved', 'bot')
GROUP BY made_day, by_user_id
UNION ALL
SELECT 'claim', claim_day, json_build_array(claimed_by_id, array_agg(claim_seconds))
FROM w WHERE claim_day IS NOT NULL AND escalation AND claimed_by_id IS NOT NULL
GROUP BY claim_day, claimed_by_id
"""


def _parts_read(*, project: Project, lo: datetime, hi: datetime) -> dict[date, Tally]:
    """The figures of the handoffs made (claims: claimed) in [lo, hi), per UTC day."""
    params: dict[str, Any] = {
        "project": project.pk,
        "lo": lo,
        "hi": hi,
        "unknown": UNKNOWN,
        "pending": PENDING,
    }
    tallies: dict[date, Tally] = {}
    with connection.cursor() as cursor:
        cursor.execute(_PARTS, params)
        rows = cursor.fetchall()
    for kind, day, figures in rows:
        tally = tallies.setdefault(day, Tally())
        if kind == "made":
            tally.escalations, tally.claimed, claim, resolve = figures
            tally.claim, tally.resolve = Durations.of(claim), Durations.of(resolve)
        elif kind == "pair":
            source, target, n = figures
            tally.pairs[(source, target)] = n
        elif kind == "bot":
            bot, n, first_at, first_id = figures
            tally.bots[bot] = (n, first_at, first_id)
        elif kind == "act":
            user, resolutions, hand_backs = figures
            tally.acts[user] = (resolutions, hand_backs)
        else:
            user, seconds = figures
            tally.claims[user] = Durations.of(seconds)
    return tallies


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _days_lock(*, project: Project, days: list[date]) -> set[date]:
    """Of these days, those whose advisory keys (as the trigger computes them: the day's,
    and the project's) this transaction now holds exclusively; not those a writer holds,
    its change not yet committed. Never waits."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d FROM unnest(%(days)s::date[]) d"
            " WHERE pg_try_advisory_xact_lock((%(project)s %% 2147483647)::int, -1)"
            " AND pg_try_advisory_xact_lock("
            "(%(project)s %% 2147483647)::int, d - date '1900-01-01')",
            {"days": days, "project": project.pk},
        )
        return {day for (day,) in cursor.fetchall()}


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: (first, last) each."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _stored_read(*, project: Project, first: date, last: date) -> dict[date, dict[str, Any]]:
    """The days first..last stored in the current form."""
    rows = DashboardDay.objects.filter(project=project, day__gte=first, day__lte=last)
    return {
        day: figures
        for day, figures in rows.values_list("day", "figures")
        if figures.get("format") == STORED_FORMAT
    }


def _days_store(*, project: Project, days: list[date]) -> tuple[dict[date, dict[str, Any]], int]:
    """These days' figures, computed now, in the stored form, and how many were stored:
    those whose locks this transaction got (a writer's uncommitted change keeps a day
    out)."""
    with transaction.atomic():
        locked = _days_lock(project=project, days=days)
        # Read after the lock: a change committed before it is in these figures.
        computed: dict[date, Tally] = {}
        for run_first, run_last in _runs(days):
            computed |= _parts_read(
                project=project,
                lo=_midnight(run_first),
                hi=_midnight(run_last + timedelta(days=1)),
            )
        figures = {day: computed.get(day, Tally()).stored() for day in days}
        if locked:
            DashboardDay.objects.bulk_create(
                [DashboardDay(project=project, day=d, figures=figures[d]) for d in locked],
                update_conflicts=True,
                unique_fields=["project", "day"],
                update_fields=["figures", "computed_at"],
            )
    return figures, len(locked)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _stored_days(*, project: Project, first: date, last: date) -> list[Tally]:
    """The stored figures of the days first..last, computing and storing those missing."""
    stored = _stored_read(project=project, first=first, last=last)
    days = _days(first, last)
    missing = [day for day in days if day not in stored]
    if missing:
        stored |= _days_store(project=project, days=missing)[0]
    # Stored or not, a day's figures are read back from the stored form, so a view
    # shows the same figures whether its days were just computed or read.
    return [Tally.load(stored[day]) for day in days]


def _stored_span(*, since: datetime, now: datetime) -> tuple[date, date]:
    """The window's days that are stored: its whole days up to yesterday (none when the
    first comes after the last)."""
    today = timezone.now().astimezone(UTC).date()
    first = since.astimezone(UTC).date()
    if _midnight(first) < since:
        first += timedelta(days=1)
    last = min(
        now.astimezone(UTC).date() - timedelta(days=1),
        today - timedelta(days=STORED_AFTER_DAYS),
    )
    return first, last


@dataclass(frozen=True)
class DaysRefreshed:
    projects: int  # projects whose missing days were computed
    stored: int  # days stored
    deleted: int  # days before any window, deleted


# The projects whose stored days of the window are fewer than its days: those with a
# handoff made since the window's first day (their latest, one entry of the (project,
# created_at) index: an EXISTS let the planner scan the table for a project with many
# handoffs), or with a day stored in it (a dashboard viewed); counted on the unique
# (project, day) index, so a pass reads no stored figures.
_LACKING = """
SELECT p.id FROM sessions_app_project p
WHERE ((SELECT max(h.created_at) FROM sessions_app_handoff h WHERE h.project_id = p.id)
           >= %(since)s
       OR EXISTS (SELECT 1 FROM sessions_app_dashboardday d
                  WHERE d.project_id = p.id AND d.day BETWEEN %(first)s AND %(last)s))
  AND (SELECT count(*) FROM sessions_app_dashboardday d
       WHERE d.project_id = p.id AND d.day BETWEEN %(first)s AND %(last)s) < %(days)s
ORDER BY p.id
"""


# One pass at a time across worker processes (a bigint key: apart from the trigger's
# pairs of int keys). Held by the connection, so a worker that dies lets it go.
_REFRESH_LOCK = 0x6D6F73735F646179  # "moss_day"


def stored_days_refresh(
    *, span: timedelta, should_stop: Callable[[], bool] = lambda: False
) -> DaysRefreshed:
    """A background pass over the dashboards in use (a project with a handoff made within
    `span`, the longest window, or a day stored in it): the past days they lack are
    computed and stored, so that a view, the first or one after handoffs changed, reads
    stored days instead of computing them; days before any window are deleted. Each
    project's days are computed in a transaction of their own, as a view would. Where
    another worker's pass is running, this one does nothing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_REFRESH_LOCK])
        (running,) = cursor.fetchone()
    if not running:
        return DaysRefreshed(projects=0, stored=0, deleted=0)
    try:
        return _refresh(span=span, should_stop=should_stop)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_REFRESH_LOCK])


def _refresh(*, span: timedelta, should_stop: Callable[[], bool]) -> DaysRefreshed:
    now = timezone.now()
    first, last = _stored_span(since=now - span, now=now)
    days = _days(first, last)
    deleted, _ = DashboardDay.objects.filter(day__lt=first - timedelta(days=1)).delete()
    params: dict[str, Any] = {
        "since": _midnight(first),
        "first": first,
        "last": last,
        "days": len(days),
    }
    with connection.cursor() as cursor:
        cursor.execute(_LACKING, params)
        lacking = [pk for (pk,) in cursor.fetchall()]
    projects = stored = 0
    for project in Project.objects.filter(pk__in=lacking).order_by("pk"):
        if should_stop():
            break
        have = _stored_read(project=project, first=first, last=last)
        missing = [day for day in days if day not in have]
        if missing:
            projects += 1
            stored += _days_store(project=project, days=missing)[1]
    return DaysRefreshed(projects=projects, stored=stored, deleted=deleted)


def window_tally(*, project: Project, since: datetime, now: datetime) -> Tally:
    """The figures of the handoffs made (claims: claimed) from since to now, inclusive."""
    end = now + timedelta(microseconds=1)
    first, last = _stored_span(since=since, now=now)
    total = Tally()
    if first > last:
        parts = list(_parts_read(project=project, lo=since, hi=end).values())
    else:
        parts = [
            *_stored_days(project=project, first=first, last=last),
            *_parts_read(project=project, lo=since, hi=_midnight(first)).values(),
            *_parts_read(project=project, lo=_midnight(last + timedelta(days=1)), hi=end).values(),
        ]
    for part in parts:
        total.add(part)
    return total
