"""The console's forms: they parse and name bad input; the services decide."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.models import User

from sessions_app.console.selectors import AGES, DEFAULT_TAB, SORTS, TABS, InboxQuery
from sessions_app.models import Membership, Session, Team
from sessions_app.services.console import REPLY_CHANNELS

NOTE_MAX = 2000


TOO_LONG = (
    "is %(show_value)d characters long; the limit is %(limit_value)d. Nothing was sent: "
    "shorten it, or send it in parts."
)


class LongTextField(forms.CharField):
    """Text refused, never cut, past its limit: no `maxlength` attribute, whose browsers
    silently truncate a paste; static/js/session.js counts and warns instead."""

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        attrs["data-max-chars"] = str(self.max_length)
        return attrs


class ReplyForm(forms.Form):
    text = LongTextField(
        label="Reply",
        max_length=settings.MOSS_MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "data-canned": ""}),
        error_messages={"max_length": TOO_LONG},
    )
    channel = forms.ChoiceField(label="Channel", choices=[(c, c) for c in REPLY_CHANNELS])


class NoteForm(forms.Form):
    text = LongTextField(
        label="Private note",
        max_length=settings.MOSS_MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": TOO_LONG},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the reply form on the same page has a `text` field too.
        kwargs.setdefault("auto_id", "note_%s")
        super().__init__(*args, **kwargs)


class HandBackForm(forms.Form):
    bot = forms.CharField(label="Bot", max_length=200)
    note = forms.CharField(
        label="Note for the bot", max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )


class TransferForm(forms.Form):
    to = forms.ChoiceField(label="Transfer to")
    note = forms.CharField(
        label="Why", max_length=NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, session: Session, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.filter(project_id=session.project_id).order_by("name")
        people = (
            Membership.objects.filter(project_id=session.project_id)
            .exclude(user=user)
            .select_related("user")
            .order_by("user__username")
        )
        cast(forms.ChoiceField, self.fields["to"]).choices = [
            ("humans", "The queue (anyone)"),
            *[(f"team:{t.name}", f"Team {t.name}") for t in teams],
            *[(f"user:{m.user.get_username()}", m.user.get_username()) for m in people],
        ]


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="Resolution note",
        max_length=NOTE_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def form_errors(form: forms.Form) -> str:
    """One sentence naming every problem, for a notice."""
    problems = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else name
        problems.append(f"{label}: {' '.join(str(e) for e in errors)}")
    return "; ".join(problems)


class SupervisorNoteForm(forms.Form):
    """Take over and release: a note for the record, nothing else."""

    note = forms.CharField(
        label="Why", max_length=NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ReassignForm(SupervisorNoteForm):
    to = forms.ChoiceField(label="Reassign to")

    def __init__(self, *args: Any, session: Session, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.filter(project_id=session.project_id).order_by("name")
        people = (
            Membership.objects.filter(project_id=session.project_id)
            .exclude(user__pk=session.holder_id or 0)
            .select_related("user")
            .order_by("user__username")
        )
        cast(forms.ChoiceField, self.fields["to"]).choices = [
            *[(f"team:{t.name}", f"Team {t.name}") for t in teams],
            *[(f"user:{m.user.get_username()}", m.user.get_username()) for m in people],
        ]


class InboxFilterForm(forms.Form):
    """The inbox's tab, filters, sort and page, from the query string."""

    tab = forms.ChoiceField(label="Tab", choices=list(TABS.items()), required=False)
    team = forms.IntegerField(label="Team", min_value=1, required=False)
    channel = forms.CharField(label="Channel", max_length=50, required=False)
    age = forms.ChoiceField(
        label="Age",
        choices=[("", "any age"), *[(k, v[0]) for k, v in AGES.items()]],
        required=False,
    )
    sort = forms.ChoiceField(label="Sort", choices=list(SORTS.items()), required=False)
    page = forms.IntegerField(label="Page", min_value=1, max_value=100_000, required=False)

    def query(self) -> InboxQuery:
        data = self.cleaned_data
        return InboxQuery(
            tab=data["tab"] or DEFAULT_TAB,
            team=data["team"],
            channel=data["channel"],
            age=data["age"],
            sort=data["sort"] or "longest",
            page=data["page"] or 1,
        )
