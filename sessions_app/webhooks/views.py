"""The supervisors' webhooks page: the project's endpoints and their latest attempts."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sessions_app.supervise.selectors import supervised_membership_get
from sessions_app.webhooks.selectors import webhook_attempts_recent, webhooks_of
from sessions_app.webhooks.services import duration_text

ATTEMPTS_SHOWN = 100


@require_GET
@login_required
def webhooks(request: HttpRequest, project_id: str) -> HttpResponse:
    membership = supervised_membership_get(user=request.user, project_id=project_id)
    project = membership.project
    window = timedelta(seconds=settings.MOSS_WEBHOOK_RETRY_WINDOW_SECONDS)
    return render(
        request,
        "supervise/webhooks.html",
        {
            "project": project,
            "supervises": True,
            "endpoints": webhooks_of(project=project),
            "attempts": webhook_attempts_recent(project=project, limit=ATTEMPTS_SHOWN),
            "attempts_shown": ATTEMPTS_SHOWN,
            "retry_window": duration_text(window),
        },
    )
