"""What a signed-in user may reach. Every page, fragment, action and websocket goes through here.

A user reaches a project only through a membership, and a session only through
a project they belong to; anything else is a 404, indistinguishable from a
missing object.

Inside a project, supervisors and admins may open every session. An agent may
open, in the console, the escalations waiting for them (routed to anyone, to
one of their teams or to them) and the sessions they hold or held; in the
supervisor pages, only the sessions they hold or held. "Held" means a real
action: a claim, or a handoff they made. Opening a session in the console is
audited (`session.viewed`) but never widens what a user may open later.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from sessions_app.models import Handoff, Membership, Project, Role, Session, SessionStatus, Team

SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)


def sign_in_current(*, session_key: str | None, user_id: int) -> bool:
    """Whether the sign-in session `session_key` still signs in user `user_id`, read
    afresh: not signed out or expired, the account active, its password unchanged
    (Django's session hash). A long-lived websocket asks this again and again."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    return user.is_authenticated and user.pk == user_id


def user_memberships(*, user: User | AnonymousUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("project").order_by("project__name")


def user_projects(
    *, user: User | AnonymousUser, roles: Iterable[str] | None = None
) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return Project.objects.filter(pk__in=memberships.values("project_id")).order_by("name")


def membership_get(
    *, user: User | AnonymousUser, project_id: str, roles: Iterable[str] | None = None
) -> Membership:
    """The user's membership in the project with this public id, or 404."""
    memberships = user_memberships(user=user).filter(project__public_id=project_id)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    membership = memberships.first()
    if membership is None:
        raise Http404("project not found")
    return membership


def membership_supervises(membership: Membership) -> bool:
    return membership.role in SUPERVISING_ROLES


def user_supervises(*, user: User, project: Project) -> bool:
    return Membership.objects.filter(
        user=user, project=project, role__in=SUPERVISING_ROLES
    ).exists()


def session_get_for_user(
    *,
    user: User | AnonymousUser,
    project_id: str,
    name: str,
    roles: Iterable[str] | None = None,
) -> tuple[Membership, Session]:
    """Any session of a project the user belongs to. Only for actions whose service
    decides itself who may act (a claim), never to show a session."""
    membership = membership_get(user=user, project_id=project_id, roles=roles)
    session = Session.objects.filter(project=membership.project, name=name).first()
    if session is None:
        raise Http404("session not found")
    return membership, session


def routed_to_user_q(user: User) -> Q:
    """Waiting escalations routed to anyone, to one of the user's teams, or to the user."""
    return Q(status=SessionStatus.WAITING) & (
        Q(queue_team__isnull=True, queue_user__isnull=True)
        | Q(queue_team__in=Team.objects.filter(members=user))
        | Q(queue_user=user)
    )


def held_by_user_q(user: User) -> Q:
    """Sessions the user holds now, claimed at some point, or handed off themselves."""
    acted = Handoff.objects.filter(Q(claimed_by=user) | Q(by_user=user), session=OuterRef("pk"))
    return Q(holder=user) | Q(Exists(acted))


def session_routed_to_user(*, session: Session, user: User) -> bool:
    """Whether a waiting escalation's routing includes this user (not their role)."""
    if session.queue_user_id is not None:
        return session.queue_user_id == user.pk
    if session.queue_team_id is not None:
        return Team.objects.filter(pk=session.queue_team_id, members=user).exists()
    return True


def sessions_console_visible(*, membership: Membership) -> QuerySet[Session]:
    """What a member may open in the console."""
    sessions = Session.objects.filter(project=membership.project)
    if membership_supervises(membership):
        return sessions
    return sessions.filter(routed_to_user_q(membership.user) | held_by_user_q(membership.user))


def sessions_audit_visible(*, membership: Membership) -> QuerySet[Session]:
    """What a member may audit in the supervisor pages (timeline, as received, exports)."""
    sessions = Session.objects.filter(project=membership.project)
    if membership_supervises(membership):
        return sessions
    return sessions.filter(held_by_user_q(membership.user))


def session_get_for_console(
    *, user: User | AnonymousUser, project_id: str, name: str
) -> tuple[Membership, Session]:
    """A session this user may open in the console, or 404."""
    membership = membership_get(user=user, project_id=project_id)
    session = sessions_console_visible(membership=membership).filter(name=name).first()
    if session is None:
        raise Http404("session not found")
    return membership, session
