# The dashboard as computed before the SQL version (annotations renamed: Handoff now
# stores channel_before/channel_after itself). Kept for tests/test_dashboard_sql.py.
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
  handoff point, or "pending" while nobody has written since. Resolutions are
  not handoffs between channels and are left out.
- Hand-back: a specialist handing the session to a bot.
- Per specialist: claims in the window, their median time to claim, and the
  specialist's resolutions and hand-backs in the window.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from sessions_app.models import Handoff, HandoffTarget, Project, Session, SessionStatus, Turn

# The buckets and the unknown ends are the dashboard's definitions, not what is checked.
from sessions_app.services.dashboard_days import BUCKETS, PENDING, UNKNOWN

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
    waiting: list[WaitingEscalation]
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


def _waiting(project: Project, now: datetime) -> list[WaitingEscalation]:
    sessions = (
        Session.objects.filter(project=project, status=SessionStatus.WAITING)
        .select_related("queue_team", "queue_user")
        .order_by("waiting_since", "id")
    )
    rows = []
    for session in sessions:
        if session.queue_user is not None:
            routed = session.queue_user.get_username()
        elif session.queue_team is not None:
            routed = f"team {session.queue_team.name}"
        else:
            routed = "anyone"
        age = (now - session.waiting_since).total_seconds() if session.waiting_since else 0.0
        rows.append(WaitingEscalation(session.name, session.waiting_since, max(age, 0.0), routed))
    return rows


def _channel_pairs(handoffs: Sequence[Handoff]) -> list[Count]:
    pairs: Counter[str] = Counter()
    for handoff in handoffs:
        if handoff.to_kind == HandoffTarget.RESOLVED:
            continue
        source = handoff.from_channel or getattr(handoff, "turn_channel_before", None) or UNKNOWN
        target = getattr(handoff, "turn_channel_after", None) or PENDING
        pairs[f"{source} → {target}"] += 1
    return [Count(label, n) for label, n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))]


def _resolve_durations(resolutions: Sequence[Handoff]) -> list[float]:
    if not resolutions:
        return []
    session_ids = {h.session_id for h in resolutions}
    history: dict[int, list[Handoff]] = {}
    for handoff in Handoff.objects.filter(session_id__in=session_ids).order_by("version"):
        history.setdefault(handoff.session_id, []).append(handoff)
    durations = []
    for resolution in resolutions:
        start: Handoff | None = None
        for earlier in history[resolution.session_id]:
            if earlier.version >= resolution.version:
                break
            if earlier.to_kind in (HandoffTarget.RESOLVED, HandoffTarget.BOT):
                start = None
            elif earlier.to_kind in ESCALATION_KINDS and start is None:
                start = earlier
        if start is not None:
            durations.append((resolution.created_at - start.created_at).total_seconds())
    return durations


def dashboard_figures(
    *, project: Project, window: str, now: datetime | None = None
) -> DashboardFigures:
    now = now or timezone.now()
    window = window_check(window)
    label, span = WINDOWS[window]
    since = now - span
    turns = Turn.objects.filter(session=OuterRef("session"))
    handoffs = list(
        Handoff.objects.filter(session__project=project, created_at__gte=since, created_at__lte=now)
        .select_related("by_user", "claimed_by")
        .annotate(
            turn_channel_before=Subquery(
                turns.filter(seq__lte=OuterRef("last_seq"))
                .order_by("-seq")
                .values("metadata__channel")[:1]
            ),
            turn_channel_after=Subquery(
                turns.filter(seq__gt=OuterRef("last_seq"))
                .order_by("seq")
                .values("metadata__channel")[:1]
            ),
        )
        .order_by("created_at", "id")
    )
    escalations = [h for h in handoffs if h.to_kind in ESCALATION_KINDS]
    claimed = [h for h in escalations if h.claimed_at is not None]
    claim_seconds = [(h.claimed_at - h.created_at).total_seconds() for h in claimed]  # type: ignore[operator]
    resolutions = [h for h in handoffs if h.to_kind == HandoffTarget.RESOLVED]
    hand_backs = [h for h in handoffs if h.to_kind == HandoffTarget.BOT and h.by_user_id]
    return DashboardFigures(
        window=window,
        window_label=label,
        since=since,
        now=now,
        waiting=_waiting(project, now),
        escalations=len(escalations),
        unclaimed=len(escalations) - len(claimed),
        time_to_claim=distribution_build(claim_seconds),
        time_to_resolve=distribution_build(_resolve_durations(resolutions)),
        channel_pairs=_channel_pairs(handoffs),
        hand_backs=len(hand_backs),
        hand_backs_by_bot=[
            Count(bot or "bot", n)
            for bot, n in Counter(h.to_target for h in hand_backs).most_common()
        ],
        specialists=_specialists(project, since, now, resolutions, hand_backs),
    )


def _specialists(
    project: Project,
    since: datetime,
    now: datetime,
    resolutions: Sequence[Handoff],
    hand_backs: Sequence[Handoff],
) -> list[SpecialistRow]:
    """Claims are counted by when they happened, so an older escalation claimed today counts."""
    claims = Handoff.objects.filter(
        session__project=project,
        to_kind__in=ESCALATION_KINDS,
        claimed_at__gte=since,
        claimed_at__lte=now,
    ).select_related("claimed_by")
    waits: dict[str, list[float]] = {}
    for handoff in claims:
        if handoff.claimed_by is None or handoff.claimed_at is None:
            continue
        waits.setdefault(handoff.claimed_by.get_username(), []).append(
            (handoff.claimed_at - handoff.created_at).total_seconds()
        )
    resolved = Counter(h.by_user.get_username() for h in resolutions if h.by_user)
    handed = Counter(h.by_user.get_username() for h in hand_backs if h.by_user)
    names = sorted(set(waits) | set(resolved) | set(handed))
    rows = [
        SpecialistRow(
            username=name,
            claims=len(waits.get(name, [])),
            median_claim_seconds=statistics.median(waits[name]) if waits.get(name) else None,
            resolutions=resolved[name],
            hand_backs=handed[name],
        )
        for name in names
    ]
    return sorted(rows, key=lambda r: (-r.claims, r.username))
