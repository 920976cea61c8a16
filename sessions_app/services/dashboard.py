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

Every figure is aggregated in SQL per UTC day and added up here: past days' figures
are stored and reused until one of their handoffs changes, and the rest of the window
is read from the handoffs (services/dashboard_days.py). Medians and p90 over busy
days come from bucket counts and are within 1%. The waiting list shows the
WAITING_SHOWN oldest and counts the rest. tests/dashboard_reference.py keeps the
earlier per-handoff Python computation, and the tests require the same figures from
both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from sessions_app.models import HandoffTarget, Project, Session, SessionStatus
from sessions_app.services.dashboard_days import (
    BUCKETS,
    DaysRefreshed,
    Durations,
    Tally,
    stored_days_refresh,
    window_tally,
)

WINDOWS: dict[str, tuple[str, timedelta]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_WINDOW = "7d"
ESCALATION_KINDS = (HandoffTarget.HUMANS, HandoffTarget.TEAM, HandoffTarget.USER)


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


WAITING_SHOWN = 20


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


def _distribution(durations: Durations) -> Distribution:
    median, p90 = durations.quantiles()
    return Distribution(
        buckets=[Count(label, n) for (_, label), n in zip(BUCKETS, durations.chart, strict=True)],
        count=durations.count,
        median_seconds=median,
        p90_seconds=p90,
    )


def _specialists(tally: Tally) -> list[SpecialistRow]:
    users = set(tally.claims) | set(tally.acts)
    names = dict(User.objects.filter(pk__in=users).values_list("pk", "username"))
    rows = []
    for user in users & set(names):
        claims = tally.claims.get(user, Durations())
        resolutions, hand_backs = tally.acts.get(user, (0, 0))
        if claims.count + resolutions + hand_backs:
            rows.append(
                SpecialistRow(
                    username=names[user],
                    claims=claims.count,
                    median_claim_seconds=claims.quantiles()[0],
                    resolutions=resolutions,
                    hand_backs=hand_backs,
                )
            )
    return sorted(rows, key=lambda r: (-r.claims, r.username))


def dashboard_figures(
    *, project: Project, window: str, now: datetime | None = None
) -> DashboardFigures:
    now = now or timezone.now()
    window = window_check(window)
    label, span = WINDOWS[window]
    since = now - span
    tally = window_tally(project=project, since=since, now=now)
    pairs = [Count(f"{source} → {target}", n) for (source, target), n in tally.pairs.items()]
    bots = sorted(tally.bots.items(), key=lambda item: (-item[1][0], item[1][1], item[1][2]))
    waiting, waiting_count = _waiting(project, now)
    return DashboardFigures(
        window=window,
        window_label=label,
        since=since,
        now=now,
        waiting=waiting,
        waiting_count=waiting_count,
        escalations=tally.escalations,
        unclaimed=tally.escalations - tally.claimed,
        time_to_claim=_distribution(tally.claim),
        time_to_resolve=_distribution(tally.resolve),
        channel_pairs=sorted(pairs, key=lambda c: (-c.count, c.label)),
        hand_backs=sum(n for _, (n, _, _) in bots),
        hand_backs_by_bot=[Count(bot or "bot", n) for bot, (n, _, _) in bots],
        specialists=_specialists(tally),
    )


def dashboard_days_refresh(*, should_stop: Callable[[], bool] = lambda: False) -> DaysRefreshed:
    """The worker's pass over the dashboards in use: their missing past days stored, days
    before the longest window deleted (services/dashboard_days.py)."""
    longest = max(span for _, span in WINDOWS.values())
    return stored_days_refresh(span=longest, should_stop=should_stop)
