"""Django admin for operators.

State that services keep consistent (session status and counters, turns and
their embeddings, handoffs) is read-only here; the audit log cannot be added
to, changed or deleted, which also stops a project with history from being
deleted. Keys are issued through the service so the raw key is shown once.
A staff user who is not a superuser sees only the projects they supervise
(admin_scope.py).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from sessions_app.actors import Actor
from sessions_app.admin_scope import ProjectScopedAdmin, related_filter
from sessions_app.errors import InvalidInput
from sessions_app.models import (
    ApiKey,
    AuditEvent,
    CannedResponse,
    Handoff,
    Membership,
    Project,
    Session,
    Team,
    Turn,
)
from sessions_app.services.projects import api_key_issue, api_key_revoke
from sessions_app.services.sessions import session_delete
from sessions_app.validation import metadata_check, unpaired_surrogate_at

TURN_HIDDEN = ("embedding", "context_embedding", "search_vector")


class ReadOnlyMixin:
    """View-only in the admin: history is written by the services, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a turn or a handoff here would skip the audit, the events and the
        # session's counters: turns are deleted through the API, with the session.
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


class ApiKeyInline(ReadOnlyMixin, admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("label", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    list_display = ("name", "public_id", "session_count", "created_at")
    search_fields = ("name", "public_id")
    project_path = "pk"
    readonly_fields = ("public_id", "created_at")
    inlines = (MembershipInline, ApiKeyInline)
    fieldsets = (
        (None, {"fields": ("name", "public_id", "created_at")}),
        (
            "Service levels (the console's inbox colours rows past these; 0 turns one off)",
            {
                "fields": (
                    ("sla_waiting_warn_seconds", "sla_waiting_breach_seconds"),
                    ("sla_handling_warn_seconds", "sla_handling_breach_seconds"),
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return super().get_queryset(request).annotate(session_total=Count("sessions"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A project is the operator's to create: nobody else would be its supervisor.
        return request.user.is_superuser

    @admin.display(description="Sessions", ordering="session_total")
    def session_count(self, obj: Project) -> int:
        return getattr(obj, "session_total", 0)


@admin.register(ApiKey)
class ApiKeyAdmin(ProjectScopedAdmin):
    list_display = ("__str__", "project", "label", "created_at", "last_used_at", "active")
    list_filter = (related_filter(), ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("label", "prefix", "project__name", "project__public_id")
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("project", "label")
        return ("project", "label", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["project", "prefix", "created_at", "last_used_at", "revoked_at"]

    @admin.display(boolean=True, description="Active", ordering="revoked_at")
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued, raw_key = api_key_issue(project=obj.project, label=obj.label)
        # The admin goes on with `obj` (log entry, redirect): make it the issued key.
        obj.pk = issued.pk
        obj.prefix, obj.key_hash, obj.created_at = issued.prefix, issued.key_hash, issued.created_at
        messages.warning(
            request,
            f"New key for {obj.project}: {raw_key} — copy it now; it is stored hashed "
            "and will not be shown again.",
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            revoked += 1
        messages.success(request, f"Revoked {revoked} key{'s' if revoked != 1 else ''}.")


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    list_display = ("user", "project", "role")
    list_filter = ("role", related_filter())
    search_fields = ("user__username", "user__email", "project__name")
    raw_id_fields = ("user",)


@admin.register(CannedResponse)
class CannedResponseAdmin(ProjectScopedAdmin):
    """Reply snippets, typed as /shortcut in the console; {{key}} filled from metadata."""

    list_display = ("shortcut", "title", "project", "updated_at")
    list_filter = (related_filter(),)
    search_fields = ("shortcut", "title", "text", "project__name")


@admin.register(Team)
class TeamAdmin(ProjectScopedAdmin):
    list_display = ("name", "project", "member_count")
    list_filter = (related_filter(),)
    search_fields = ("name", "project__name", "members__username")
    filter_horizontal = ("members",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Team) -> int:
        return getattr(obj, "member_total", 0)


class TurnInline(admin.TabularInline):
    model = Turn
    exclude = TURN_HIDDEN
    fields = (
        "seq",
        "doc_id",
        "text",
        "metadata",
        "written_by",
        "model_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    ordering = ("seq",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Turn]:
        return super().get_queryset(request).select_related("written_by_user").defer(*TURN_HIDDEN)


class HandoffInline(ReadOnlyMixin, admin.TabularInline):
    model = Handoff
    fields = (
        "version",
        "from_agent",
        "from_channel",
        "to_kind",
        "to_target",
        "reason",
        "created_at",
        "claimed_by",
        "claimed_at",
    )
    readonly_fields = fields
    ordering = ("version",)
    extra = 0
    can_delete = False


class SessionAdminForm(ModelForm):
    class Meta:
        model = Session
        fields = ("metadata",)

    def clean_metadata(self) -> dict[str, str]:
        """The API's rules: an object of string values (its replies, the console and the
        search filters read it so), within the API's limits."""
        metadata = self.cleaned_data["metadata"]
        if not isinstance(metadata, dict):
            raise forms.ValidationError("metadata must be an object of string values")
        if unpaired_surrogate_at(metadata) is not None:
            raise forms.ValidationError("metadata holds a lone surrogate")
        try:
            metadata_check(metadata, where="metadata")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from exc
        return metadata


@admin.register(Session)
class SessionAdmin(ProjectScopedAdmin):
    form = SessionAdminForm
    list_display = (
        "name",
        "project",
        "status",
        "holder_display",
        "doc_count",
        "version",
        "waiting_since",
        "updated_at",
    )
    list_filter = ("status", related_filter(), related_filter("queue_team"))
    search_fields = ("name", "holder_label", "holder__username", "metadata__customer_id")
    list_select_related = ("project", "holder")
    date_hierarchy = "updated_at"
    # Status, holder and counters move only through the handoff services.
    readonly_fields = (
        "project",
        "name",
        "model_id",
        "status",
        "holder",
        "holder_label",
        "queue_team",
        "queue_user",
        "waiting_since",
        "version",
        "doc_count",
        "last_seq",
        "created_at",
        "updated_at",
    )
    fields = (*readonly_fields, "metadata")
    inlines = (HandoffInline, TurnInline)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are opened by agents, through the API

    @admin.display(description="Holder")
    def holder_display(self, obj: Session) -> str:
        return obj.holder.get_username() if obj.holder else obj.holder_label

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        # Through the service, so the deletion is audited like one through the API.
        session_delete(
            project=obj.project,
            name=obj.name,
            actor=Actor.for_user(cast(User, request.user)),
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        for session in queryset.select_related("project"):
            self.delete_model(request, session)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Its turns and handoffs, which cannot be deleted alone here, go with it through
        # session_delete (audited).
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed -= {str(Turn._meta.verbose_name), str(Handoff._meta.verbose_name)}
        return deleted, counts, perms_needed, protected


@admin.register(Turn)
class TurnAdmin(ReadOnlyMixin, ProjectScopedAdmin):
    list_display = (
        "session",
        "seq",
        "doc_id",
        "channel",
        "short_text",
        "written_by",
        "internal",
        "created_at",
    )
    list_filter = (related_filter("session__project"), "internal")
    project_path = "session__project"
    search_fields = ("doc_id", "text", "session__name")
    list_select_related = ("session", "written_by_user")
    exclude = TURN_HIDDEN

    def get_queryset(self, request: HttpRequest) -> QuerySet[Turn]:
        return super().get_queryset(request).select_related("written_by_user").defer(*TURN_HIDDEN)

    @admin.display(description="Channel")
    def channel(self, obj: Turn) -> str:
        return str((obj.metadata or {}).get("channel", ""))

    @admin.display(description="Text")
    def short_text(self, obj: Turn) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyMixin, ProjectScopedAdmin):
    list_display = (
        "session",
        "version",
        "from_agent",
        "from_channel",
        "to_kind",
        "to_target",
        "created_at",
        "claimed_by",
        "claimed_at",
    )
    list_filter = ("to_kind", "from_channel", related_filter())
    search_fields = ("session__name", "from_agent", "to_target", "reason", "job_id")
    list_select_related = ("session", "claimed_by")
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, ProjectScopedAdmin):
    """The audit log is append-only: nobody adds, changes or deletes it here."""

    list_display = (
        "created_at",
        "project",
        "session_name",
        "kind",
        "actor_label",
        "actor_user",
        "channel",
        "device",
    )
    list_filter = ("kind", "channel", related_filter())
    search_fields = ("session_name", "actor_label", "actor_user__username", "kind")
    list_select_related = ("project", "actor_user")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Registers the webhook endpoint and attempt admins.
from sessions_app.webhooks import admin as webhooks_admin  # noqa: E402, F401
