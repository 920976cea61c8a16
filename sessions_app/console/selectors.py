"""Reads for the console's inbox: its tabs and their counts, one page of rows, unread marks,
what needs the user's attention, and the team's presence.

Everything starts from `inbox_sessions`, the open sessions a user may see in the console
(access.py's rules), so a tab, a count or an attention item never reaches further.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions_app.access import SUPERVISING_ROLES, routed_to_user_q, user_projects
from sessions_app.models import (
    Membership,
    Presence,
    Project,
    Session,
    SessionSeen,
    SessionStatus,
    Team,
    Turn,
)

TABS = {
    "mine": "Mine",
    "routed": "Routed to me",
    "unassigned": "Unassigned",
    "all": "All",
}
DEFAULT_TAB = "all"
AGES = {
    "5m": ("waiting 5 min or more", timedelta(minutes=5)),
    "15m": ("15 min or more", timedelta(minutes=15)),
    "1h": ("1 hour or more", timedelta(hours=1)),
    "1d": ("1 day or more", timedelta(days=1)),
}
SORTS = {"longest": "Longest waiting first", "newest": "Newest first"}
PAGE_SIZE = 50
ATTENTION_ITEMS = 20
# A console tab beats every few seconds: past this, the user has no console open.
PRESENCE_TIMEOUT = timedelta(seconds=30)
PRESENCE_LIMIT = 50


@dataclass(frozen=True)
class InboxQuery:
    tab: str = DEFAULT_TAB
    team: int | None = None
    channel: str = ""
    age: str = ""
    sort: str = "longest"
    page: int = 1

    def params(self, **changes: object) -> str:
        """The query string of this query with some parts changed (page back to 1)."""
        values: dict[str, object] = {
            "tab": self.tab,
            "team": self.team or "",
            "channel": self.channel,
            "age": self.age,
            "sort": self.sort,
            "page": 1,
        }
        values.update(changes)
        defaults = {"tab": DEFAULT_TAB, "sort": "longest", "page": 1}
        kept = {k: v for k, v in values.items() if v not in ("", None, defaults.get(k))}
        return "?" + urlencode(kept)  # a channel may hold & # + (bots name them)


def _mine_q(user: User) -> Q:
    return Q(status=SessionStatus.HELD, holder=user)


def _routed_q(user: User) -> Q:
    """Routed by name to the user or to one of their teams (not to anyone)."""
    return Q(status=SessionStatus.WAITING) & (
        Q(queue_user=user) | Q(queue_team__in=Team.objects.filter(members=user))
    )


def _unassigned_q() -> Q:
    return Q(status=SessionStatus.WAITING, queue_team__isnull=True, queue_user__isnull=True)


def inbox_sessions(*, user: User) -> QuerySet[Session]:
    """Open sessions (waiting or held) the user may see in the console: in projects they
    supervise, all of them; elsewhere, escalations routed to them and sessions they hold."""
    projects = user_projects(user=user)
    supervised = user_projects(user=user, roles=SUPERVISING_ROLES)
    return Session.objects.filter(
        Q(project__in=projects),
        Q(status__in=(SessionStatus.WAITING, SessionStatus.HELD)),
        Q(project__in=supervised) | routed_to_user_q(user) | _mine_q(user),
    )


def _tab_q(tab: str, user: User) -> Q:
    if tab == "mine":
        return _mine_q(user)
    if tab == "routed":
        return _routed_q(user)
    if tab == "unassigned":
        return _unassigned_q()
    return Q()


def _filtered(sessions: QuerySet[Session], query: InboxQuery, now: datetime) -> QuerySet[Session]:
    sessions = sessions.annotate(since=Coalesce("waiting_since", "last_handoff__claimed_at"))
    if query.team:
        sessions = sessions.filter(queue_team_id=query.team)
    if query.channel:
        sessions = sessions.filter(last_handoff__from_channel=query.channel)
    if query.age in AGES:
        sessions = sessions.filter(since__lte=now - AGES[query.age][1])
    return sessions


def inbox_counts(*, user: User, query: InboxQuery, now: datetime | None = None) -> dict[str, int]:
    """Each tab's count under the current filters, in one query."""
    sessions = _filtered(inbox_sessions(user=user), query, now or timezone.now())
    return sessions.aggregate(**{tab: Count("pk", filter=_tab_q(tab, user)) for tab in TABS})


def _last_customer_seq() -> Subquery:
    customer = Turn.objects.filter(session=OuterRef("pk"), metadata__role="customer")
    return Subquery(customer.order_by("-seq").values("seq")[:1])


def _with_unread(sessions: QuerySet[Session], user: User) -> QuerySet[Session]:
    """`unread`: 1 for a session the user holds with a customer turn they have not seen."""
    seen = SessionSeen.objects.filter(session=OuterRef("pk"), user=user).values("seq")[:1]
    return sessions.annotate(
        customer_seq=Coalesce(_last_customer_seq(), Value(0)),
        seen_seq=Coalesce(Subquery(seen), Value(0)),
    ).annotate(
        unread=Case(
            When(_mine_q(user) & Q(customer_seq__gt=F("seen_seq")), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    )


def _waiting_keys(
    sessions: QuerySet[Session], *, user: User, newest: bool, upto: int
) -> tuple[list[int], bool]:
    """The first `upto` waiting sessions in queue order (ids), and whether there are more.

    Read project by project in the order of the (project, status, waiting_since) index,
    so a page reads the rows before it and its own, not every waiting escalation: a sort
    over several projects at once would read them all."""
    order = ("-waiting_since", "id") if newest else ("waiting_since", "id")
    keyed: list[tuple[datetime | None, int]] = []
    more = False
    waiting = sessions.filter(status=SessionStatus.WAITING)
    for project_id in user_projects(user=user).values_list("pk", flat=True):
        rows = list(
            waiting.filter(project_id=project_id)
            .order_by(*order)
            .values_list("waiting_since", "id")[:upto]
        )
        more = more or len(rows) == upto
        keyed += rows
    # The same order across projects; a waiting session always has waiting_since, but
    # one without sorts last as in SQL (NULLS LAST ascending, NULLS FIRST descending).
    floor = datetime.min.replace(tzinfo=UTC)
    if newest:
        keyed.sort(key=lambda row: row[1])
        keyed.sort(key=lambda row: (row[0] is None, row[0] or floor), reverse=True)
    else:
        keyed.sort(key=lambda row: (row[0] is None, row[0] or floor, row[1]))
    return [pk for _, pk in keyed[:upto]], more


def inbox_page(
    *, user: User, query: InboxQuery, offset: int, limit: int, now: datetime | None = None
) -> list[Session]:
    """`limit` sessions of the tab under the filters from `offset`: waiting ones first,
    sorted by waiting time, then those held, by when they were claimed.

    The page costs what it shows: waiting escalations (the ones that pile up) are read in
    index order up to the page's end; held sessions, as many as the specialists hold, are
    sorted only when the page reaches them. Then the page's rows alone get their last
    customer turn and unread mark."""
    now = now or timezone.now()
    sessions = _filtered(inbox_sessions(user=user), query, now).filter(_tab_q(query.tab, user))
    newest = query.sort == "newest"
    ids, more = _waiting_keys(sessions, user=user, newest=newest, upto=offset + limit)
    page_ids = ids[offset:]
    if len(page_ids) < limit and not more:
        since = F("since").desc(nulls_last=True) if newest else F("since").asc(nulls_last=True)
        held_offset = max(0, offset - len(ids))
        held = sessions.filter(status=SessionStatus.HELD).order_by(since, "id")
        page_ids += list(
            held.values_list("id", flat=True)[held_offset : held_offset + limit - len(page_ids)]
        )
    last_customer = Turn.objects.filter(session=OuterRef("pk"), metadata__role="customer")
    rows = (
        _with_unread(sessions.filter(pk__in=page_ids), user)
        .annotate(
            customer_text=Subquery(last_customer.order_by("-seq").values("text")[:1]),
            customer_author=Subquery(last_customer.order_by("-seq").values("metadata__author")[:1]),
        )
        .select_related("project", "queue_team", "queue_user", "holder", "last_handoff")
    )
    position = {pk: index for index, pk in enumerate(page_ids)}
    return sorted(rows, key=lambda session: position[session.pk])


def inbox_teams(*, user: User) -> QuerySet[Team]:
    """The teams the filter offers: those of the user's projects."""
    return (
        Team.objects.filter(project__in=user_projects(user=user))
        .select_related("project")
        .order_by("project__name", "name")
    )


def inbox_channels(*, user: User, current: str = "") -> list[str]:
    """The channel filter's choices: the turn channels of the user's projects (kept on write,
    services/channels.py), and the one selected now."""
    lists = user_projects(user=user).values_list("channels", flat=True)
    channels = {channel for listed in lists for channel in listed}
    return sorted(channels | ({current} if current else set()))


@dataclass(frozen=True)
class AttentionItem:
    key: str
    title: str
    body: str
    session: Session


@dataclass(frozen=True)
class Attention:
    count: int
    items: list[AttentionItem]

    @property
    def digest(self) -> str:
        """Tells two states apart: the page says which one it shows, the socket sends newer."""
        text = f"{self.count}|" + ",".join(item.key for item in self.items)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def attention_of(*, user: User) -> Attention:
    """What needs the user: escalations routed to them or their teams, and sessions they
    hold where the customer wrote after what they have seen. Keys change with each new
    escalation or customer turn, so the page can tell what is new since its last look."""
    # Two bounded reads rather than one OR: the unread test (two subqueries a row) runs only
    # on the sessions the user holds.
    open_sessions = inbox_sessions(user=user).select_related("project", "last_handoff")
    routed = open_sessions.filter(_routed_q(user))
    unread = _with_unread(open_sessions.filter(_mine_q(user)), user).filter(Q(unread=1))
    count = routed.count() + unread.count()
    newest = ("-updated_at", "-id")
    items = []
    for session in routed.order_by(*newest)[:ATTENTION_ITEMS]:
        customer = session.metadata.get("customer_name") or session.name
        reason = session.last_handoff.reason if session.last_handoff else ""
        items.append(
            AttentionItem(
                key=f"routed-{session.pk}-{session.version}",
                title=f"Escalation routed to you: {customer}",
                body=reason or session.name,
                session=session,
            )
        )
    for session in unread.order_by(*newest)[:ATTENTION_ITEMS]:
        customer = session.metadata.get("customer_name") or session.name
        items.append(
            AttentionItem(
                key=f"unread-{session.pk}-{session.customer_seq}",  # type: ignore[attr-defined]
                title=f"{customer} wrote",
                body=session.name,
                session=session,
            )
        )
    items.sort(key=lambda item: (item.session.updated_at, item.session.pk), reverse=True)
    items = items[:ATTENTION_ITEMS]
    return Attention(count=count, items=items)


@dataclass(frozen=True)
class SpecialistPresence:
    username: str
    state: str
    load: int


def presence_state(*, presence: Presence | None, now: datetime) -> str:
    if presence is None or presence.beat_at < now - PRESENCE_TIMEOUT:
        return "offline"
    if presence.active_at and presence.active_at >= now - PRESENCE_TIMEOUT:
        return "online"
    return "away"


def team_presence(*, user: User, now: datetime | None = None) -> list[SpecialistPresence]:
    """For a supervisor: the members of the projects they supervise, whether they are online,
    and how many sessions each holds there (their load). Most loaded first, bounded."""
    now = now or timezone.now()
    supervised: QuerySet[Project] = user_projects(user=user, roles=SUPERVISING_ROLES)
    member_ids = Membership.objects.filter(project__in=supervised).values("user_id")
    members = (
        User.objects.filter(pk__in=member_ids, is_active=True)
        .annotate(
            load=Count(
                "held_sessions",
                filter=Q(
                    held_sessions__status=SessionStatus.HELD,
                    held_sessions__project__in=supervised,
                ),
            )
        )
        .select_related("presence")
        .order_by("-load", "username")[:PRESENCE_LIMIT]
    )
    result = []
    for member in members:
        presence = getattr(member, "presence", None)
        state = presence_state(presence=presence, now=now)
        result.append(SpecialistPresence(member.get_username(), state, member.load))  # type: ignore[attr-defined]
    return result
