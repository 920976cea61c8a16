"""Webhooks in Django admin: endpoints created through the service (the secret is shown
once, in a message), enabled or disabled by actions, attempts read-only."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from sessions_app.actors import Actor
from sessions_app.admin_scope import ProjectScopedAdmin, related_filter
from sessions_app.errors import InvalidInput
from sessions_app.models import WebhookAttempt, WebhookEndpoint
from sessions_app.services.event_log import EVENT_TYPES
from sessions_app.webhooks.services import (
    webhook_create,
    webhook_delete,
    webhook_disable,
    webhook_enable,
    webhook_validate,
)


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_user(cast(User, request.user))


class WebhookEndpointAddForm(ModelForm):
    url = forms.CharField(max_length=2000, label="URL")
    types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("project", "url", "types")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        project = cleaned.get("project")
        if project is not None and "url" in cleaned:
            try:
                webhook_validate(project=project, url=cleaned["url"], types=cleaned["types"])
            except InvalidInput as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ProjectScopedAdmin):
    list_display = (
        "url",
        "project",
        "type_list",
        "enabled",
        "disabled_reason",
        "cursor",
        "failures",
        "next_attempt_at",
        "created_at",
    )
    list_filter = (related_filter(), ("disabled_at", admin.EmptyFieldListFilter))
    search_fields = ("url", "public_id", "project__name", "project__public_id")
    list_select_related = ("project",)
    actions = ("enable", "disable")
    readonly_fields = (
        "project",
        "public_id",
        "url",
        "types",
        "created_at",
        "disabled_at",
        "disabled_reason",
        "cursor",
        "failures",
        "failing_since",
        "next_attempt_at",
        "attempts_link",
    )

    def get_form(
        self,
        request: HttpRequest,
        obj: WebhookEndpoint | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = WebhookEndpointAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        return ("project", "url", "types") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The change page only shows; state moves through the actions.
        return obj is None and super().has_change_permission(request)

    @admin.display(boolean=True, description="Enabled", ordering="disabled_at")
    def enabled(self, obj: WebhookEndpoint) -> bool:
        return obj.is_enabled

    @admin.display(description="Types")
    def type_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.types) or "all"

    @admin.display(description="Attempts")
    def attempts_link(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:sessions_app_webhookattempt_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">every attempt</a>', url, obj.pk)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm, change: bool
    ) -> None:
        endpoint, secret = webhook_create(
            project=obj.project,
            actor=_actor(request),
            url=form.cleaned_data["url"],
            types=form.cleaned_data["types"],
        )
        # The admin goes on with `obj` (log entry, redirect): make it the created endpoint.
        obj.pk, obj.public_id, obj.url = endpoint.pk, endpoint.public_id, endpoint.url
        messages.warning(
            request,
            f"Webhook secret for {endpoint.url}: {secret} — copy it now; "
            "it will not be shown again.",
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_delete(project=obj.project, public_id=obj.public_id, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.select_related("project"):
            self.delete_model(request, endpoint)

    @admin.action(description="Enable selected endpoints again", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhook_enable(endpoint=endpoint, actor=_actor(request))
        messages.success(request, "Enabled; each resumes at the event it stopped at.")

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        reason = f"disabled by {request.user.get_username()} in admin"
        for endpoint in queryset:
            webhook_disable(endpoint=endpoint, actor=_actor(request), reason=reason)
        messages.success(request, "Disabled.")


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ProjectScopedAdmin):
    """Every delivery attempt, read-only."""

    list_display = (
        "created_at",
        "endpoint",
        "event_type",
        "event_cursor",
        "attempt",
        "status_code",
        "latency_ms",
        "error",
    )
    list_filter = ("event_type", related_filter("endpoint__project"), related_filter("endpoint"))
    project_path = "endpoint__project"
    search_fields = ("event_id", "event_type", "error", "endpoint__url")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
