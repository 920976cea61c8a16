"""The sessions list's filter and search parameters, validated (bad input is a 422 naming it)."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from sessions_app.models import SessionStatus
from sessions_app.supervise.selectors import SessionFilters

SORT_CHOICES = [
    ("updated", "Recently active"),
    ("oldest", "Least recently active"),
    ("created", "Newest"),
    ("name", "Name"),
    ("waiting", "Waiting longest"),
    ("turns", "Most turns"),
]


# The ends of the calendar overflow once a day is added or a time zone applied.
DATE_BOUNDS = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(9998, 12, 31))]


class SessionFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=1000, label="Search all turns")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *SessionStatus.choices])
    channel = forms.CharField(required=False, max_length=50)
    holder = forms.CharField(required=False, max_length=200)
    customer = forms.CharField(required=False, max_length=1000, label="Customer id")
    date_from = forms.DateField(required=False, label="Active from", validators=DATE_BOUNDS)
    date_to = forms.DateField(required=False, label="Active until", validators=DATE_BOUNDS)
    waiting_minutes = forms.IntegerField(
        required=False, min_value=0, max_value=60 * 24 * 365, label="Waiting longer than (min)"
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "must be on or after 'Active from'")
        return data

    def filters(self) -> SessionFilters:
        data = self.cleaned_data
        return SessionFilters(
            status=data.get("status") or "",
            channel=data.get("channel") or "",
            holder=data.get("holder") or "",
            customer=data.get("customer") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            waiting_minutes=data.get("waiting_minutes"),
            sort=data.get("sort") or "updated",
        )
