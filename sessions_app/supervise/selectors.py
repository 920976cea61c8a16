"""Reads for the supervisor pages: which sessions a member may audit, and the filtered list.

Supervisors and admins see every session of their project; an agent sees only
the sessions they hold or held (access.sessions_audit_visible: holder now, a
claim or a handoff of theirs; opening a session in the console does not
count). Everything else is a 404, like a missing object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from sessions_app.access import (
    SUPERVISING_ROLES,
    membership_get,
    sessions_audit_visible,
)
from sessions_app.models import Membership, Session, SessionStatus
from sessions_app.services.search import Hit, turns_search

SORTS = {
    "updated": "-updated_at",
    "oldest": "updated_at",
    "created": "-created_at",
    "name": "name",
    "waiting": "waiting_since",
    "turns": "-doc_count",
}


def supervised_membership_get(*, user: User | AnonymousUser, project_id: str) -> Membership:
    """A supervisor's or admin's membership (dashboard: agents get 404)."""
    return membership_get(user=user, project_id=project_id, roles=SUPERVISING_ROLES)


def visible_session_get(
    *, user: User | AnonymousUser, project_id: str, name: str
) -> tuple[Membership, Session]:
    membership = membership_get(user=user, project_id=project_id)
    session = sessions_audit_visible(membership=membership).filter(name=name).first()
    if session is None:
        raise Http404("session not found")
    return membership, session


@dataclass(frozen=True)
class SessionFilters:
    status: str = ""
    channel: str = ""
    holder: str = ""
    customer: str = ""
    date_from: date | None = None
    date_to: date | None = None
    waiting_minutes: int | None = None
    sort: str = "updated"


def sessions_filter(
    *, sessions: QuerySet[Session], filters: SessionFilters, now: datetime | None = None
) -> QuerySet[Session]:
    """Apply the list filters. Dates select sessions active in the range (inclusive days)."""
    now = now or timezone.now()
    if filters.status:
        sessions = sessions.filter(status=filters.status)
    if filters.channel:
        sessions = sessions.filter(channels__contains=[filters.channel])
    if filters.holder:
        sessions = sessions.filter(
            Q(holder__username=filters.holder) | Q(holder_label=filters.holder)
        )
    if filters.customer:
        sessions = sessions.filter(metadata__customer_id=filters.customer)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        sessions = sessions.filter(
            updated_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz)
        )
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz)
        sessions = sessions.filter(created_at__lt=end)
    if filters.waiting_minutes is not None:
        sessions = sessions.filter(
            status=SessionStatus.WAITING,
            waiting_since__lte=now - timedelta(minutes=filters.waiting_minutes),
        )
    order = SORTS.get(filters.sort, SORTS["updated"])
    return sessions.select_related("holder").order_by(order, "-id")


# The list counts its matches up to this many: past it the page says "more than", so a
# page reads its rows and at most this many more, however many sessions the project has.
COUNT_LIMIT = 1_000


@dataclass(frozen=True)
class SessionsPage:
    object_list: list[Session]
    number: int
    has_next: bool
    # Matching sessions, counted up to COUNT_LIMIT; count_more when there are more.
    count: int
    count_more: bool
    size: int

    def __iter__(self) -> Iterator[Session]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def num_pages(self) -> int | None:
        """None while the count is bounded."""
        return None if self.count_more else max(1, -(-self.count // self.size))

    @property
    def count_limit(self) -> int:
        return COUNT_LIMIT


def sessions_page(*, sessions: QuerySet[Session], number: int, size: int) -> SessionsPage:
    """One page of the filtered list: its rows (one more read to know whether a next page
    exists) and the count, bounded by COUNT_LIMIT. A page past the end of a fully counted
    list is the last page."""
    count = sessions[: COUNT_LIMIT + 1].count()
    more = count > COUNT_LIMIT
    if not more:
        number = min(number, max(1, -(-count // size)))
    rows = list(sessions[(number - 1) * size : number * size + 1])
    return SessionsPage(
        object_list=rows[:size],
        number=number,
        has_next=len(rows) > size,
        count=min(count, COUNT_LIMIT),
        count_more=more,
        size=size,
    )


def channels_in_project(*, membership: Membership) -> list[str]:
    """Channels that occur in the project's turns, for the filter's choices (kept on write)."""
    return sorted(membership.project.channels)


SEARCH_TOP_K = 20
# The supervisor's search reads the most recently active sessions the member
# may audit, up to these bounds, so its cost does not grow with the project.
SEARCH_MAX_SESSIONS = 500
SEARCH_MAX_TURNS = 20_000


@dataclass(frozen=True)
class VisibleSearch:
    hits: list[Hit]
    sessions_searched: int
    turns_searched: int
    # More sessions matched the filters than were searched.
    bounded: bool


def turns_search_visible(
    *, membership: Membership, query: str, sessions: QuerySet[Session] | None = None
) -> VisibleSearch:
    """Search the sessions this member may audit (those `sessions` selects, newest activity
    first, within the bounds above), scored exactly as the API's query; private notes
    included (humans read them), marked in the results."""
    candidates = sessions if sessions is not None else sessions_audit_visible(membership=membership)
    rows = candidates.order_by("-updated_at", "-id").values_list("pk", "doc_count")
    session_ids: list[int] = []
    turns = 0
    bounded = False
    for pk, doc_count in rows[: SEARCH_MAX_SESSIONS + 1]:
        if len(session_ids) == SEARCH_MAX_SESSIONS or (
            session_ids and turns + doc_count > SEARCH_MAX_TURNS
        ):
            bounded = True
            break
        session_ids.append(pk)
        turns += doc_count
    hits = (
        turns_search(
            session_ids=session_ids, query=query, top_k=SEARCH_TOP_K, include_internal=True
        ).docs
        if session_ids
        else []
    )
    return VisibleSearch(
        hits=hits, sessions_searched=len(session_ids), turns_searched=turns, bounded=bounded
    )
