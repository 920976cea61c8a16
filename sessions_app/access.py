"""What a signed-in user may reach. Every page, fragment, action and websocket goes through here.

A user reaches a project only through a membership, and a session only through
a project they belong to; anything else is a 404, indistinguishable from a
missing object.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from sessions_app.models import Membership, Project, Role, Session

SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)


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


def session_get_for_user(
    *,
    user: User | AnonymousUser,
    project_id: str,
    name: str,
    roles: Iterable[str] | None = None,
) -> tuple[Membership, Session]:
    membership = membership_get(user=user, project_id=project_id, roles=roles)
    session = Session.objects.filter(project=membership.project, name=name).first()
    if session is None:
        raise Http404("session not found")
    return membership, session
