"""Admin pages scoped to the projects a staff user supervises.

A superuser is the operator and sees every project. Any other staff user sees,
and edits as far as Django's model permissions let them, only the rows of the
projects where they are a supervisor or an admin (Membership); the projects,
teams and sessions offered in forms and filters are theirs too. So the admin is
no way across a project's boundary, as the console and the API are not.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from sessions_app.access import SUPERVISING_ROLES, user_projects
from sessions_app.models import Project, Session, Team


def admin_projects(request: HttpRequest) -> QuerySet[Project] | None:
    """The projects this admin user may see; None: every one (a superuser)."""
    if request.user.is_superuser:
        return None
    return user_projects(user=request.user, roles=SUPERVISING_ROLES)


class ProjectRowLock:
    """A form mixin: validation takes the project's row lock first. The admin saves in
    the transaction it validates in, so of two people adding the same team name or
    shortcut at once, the second waits here and its unique check then sees the
    first's row: the form's error, not an IntegrityError (a 500)."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        project = cleaned.get("project")
        if project is None:  # a change form without the field: the row's own
            project = getattr(getattr(self, "instance", None), "project", None)
        if isinstance(project, Project):
            # NO KEY: rows inserted meanwhile that refer to the project (turns, events)
            # take a key-share lock on it, which this one leaves them.
            Project.objects.select_for_update(no_key=True).filter(pk=project.pk).exists()
        return cleaned


class ProjectScopedAdmin(admin.ModelAdmin):
    # The lookup from the model to its project ("pk" for Project itself).
    project_path = "project"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if self.project_path == "pk":
            return form
        return type(form.__name__, (ProjectRowLock, form), {})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        projects = admin_projects(request)
        if projects is None:
            return queryset
        return queryset.filter(**{f"{self.project_path}__in": projects})

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        projects = admin_projects(request)
        if projects is not None:
            related = db_field.related_model
            if related is Project:
                kwargs["queryset"] = projects
            elif related in (Team, Session):
                kwargs["queryset"] = related._default_manager.filter(project__in=projects)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def related_filter(path: str = "project") -> tuple[str, type[admin.FieldListFilter]]:
    """A list filter offering only the projects (teams, endpoints…) the listed rows
    refer to: a plain one would name every project of the server."""
    return (path, admin.RelatedOnlyFieldListFilter)
