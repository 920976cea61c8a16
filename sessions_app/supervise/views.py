"""Supervisor pages: sessions list and search, timeline, as-received thread, exports, dashboard.

Thin: each view checks access (404 for anything the member may not audit),
calls one read, renders. One template serves the page and its htmx partial.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from sessions_app import charts
from sessions_app.access import (
    membership_get,
    membership_supervises,
    sessions_audit_visible,
    user_memberships,
)
from sessions_app.errors import InvalidInput, NotFound
from sessions_app.services import dashboard as dashboard_service
from sessions_app.services.timeline import (
    as_received_build,
    handoff_links,
    timeline_chart,
    timeline_csv,
    timeline_cursor_for_seq,
    timeline_iter,
    timeline_jsonl,
    timeline_page,
)
from sessions_app.streaming import rows_streamed
from sessions_app.supervise.forms import SessionFilterForm
from sessions_app.supervise.selectors import (
    channels_in_project,
    sessions_filter,
    sessions_page,
    supervised_membership_get,
    turns_search_visible,
    visible_session_get,
)

PAGE_SIZE = 25


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    memberships = list(user_memberships(user=request.user))
    if len(memberships) == 1:
        return redirect("supervise:sessions", project_id=memberships[0].project.public_id)
    return render(request, "supervise/projects.html", {"memberships": memberships})


@vary_on_headers("HX-Request")
@require_GET
@login_required
def sessions(request: HtmxHttpRequest, project_id: str) -> HttpResponse:
    membership = membership_get(user=request.user, project_id=project_id)
    form = SessionFilterForm(request.GET)
    context: dict[str, object] = {
        "membership": membership,
        "project": membership.project,
        "supervises": membership_supervises(membership),
        "form": form,
        "channels": channels_in_project(membership=membership),
        "hits": [],
    }
    status = 200
    if form.is_valid():
        visible = sessions_audit_visible(membership=membership)
        listed = sessions_filter(sessions=visible, filters=form.filters())
        context["page"] = sessions_page(
            sessions=listed, number=form.cleaned_data.get("page") or 1, size=PAGE_SIZE
        )
        query = form.cleaned_data["q"]
        if query:
            try:
                searched = turns_search_visible(membership=membership, query=query)
                context["hits"] = searched.hits
                context["searched"] = searched
            except InvalidInput as exc:
                form.add_error("q", exc.message)
                status = 422
    else:
        status = 422
    partial = request.htmx and not request.htmx.history_restore_request
    template = "supervise/_sessions_results.html" if partial else "supervise/sessions.html"
    return render(request, template, context, status=status)


def _cursor(value: str | None) -> int | None:
    """A page cursor from the query string; anything but a positive id is a 404."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # not '²'
        raise Http404("no such page")
    return int(value)


@require_GET
@login_required
def timeline(request: HttpRequest, project_id: str, name: str) -> HttpResponse:
    membership, session = visible_session_get(user=request.user, project_id=project_id, name=name)
    try:
        after = _cursor(request.GET.get("after"))
        seq = _cursor(request.GET.get("seq"))
        if after is None and seq is not None:
            after = timeline_cursor_for_seq(session=session, seq=seq)
        page = timeline_page(session=session, after=after)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    entries = page.entries
    return render(
        request,
        "supervise/timeline.html",
        {
            "project": membership.project,
            "supervises": membership_supervises(membership),
            "session": session,
            "entries": entries,
            "next_after": page.next_after,
            "first_page": after is None,
            "chart": timeline_chart(entries),
            "links": handoff_links(session=session),
        },
    )


@require_GET
@login_required
def as_received(request: HttpRequest, project_id: str, name: str, version: int) -> HttpResponse:
    membership, session = visible_session_get(user=request.user, project_id=project_id, name=name)
    try:
        received = as_received_build(
            session=session, version=version, before=_cursor(request.GET.get("before"))
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return render(
        request,
        "supervise/as_received.html",
        {
            "project": membership.project,
            "supervises": membership_supervises(membership),
            "session": session,
            "received": received,
            "links": handoff_links(session=session, around=version),
        },
    )


EXPORT_FORMATS = {
    "jsonl": ("application/x-ndjson; charset=utf-8", timeline_jsonl),
    "csv": ("text/csv; charset=utf-8", timeline_csv),
}


@require_GET
@login_required
def export(request: HttpRequest, project_id: str, name: str, fmt: str) -> StreamingHttpResponse:
    _, session = visible_session_get(user=request.user, project_id=project_id, name=name)
    content_type, render_rows = EXPORT_FORMATS[fmt]
    # A page of the timeline at a time: constant memory whatever the session's size.
    rows = render_rows(timeline_iter(session=session))
    response = StreamingHttpResponse(rows_streamed(request, rows), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{session.name}-timeline.{fmt}"'
    return response


@require_GET
@login_required
def dashboard(request: HttpRequest, project_id: str) -> HttpResponse:
    membership = supervised_membership_get(user=request.user, project_id=project_id)
    window, error = request.GET.get("window", ""), ""
    if window and window not in dashboard_service.WINDOWS:
        window, error = "", f"Window: choose one of {', '.join(dashboard_service.WINDOWS)}"
    figures = dashboard_service.dashboard_figures(project=membership.project, window=window)
    return render(
        request,
        "supervise/dashboard.html",
        {
            "project": membership.project,
            "supervises": True,
            "figures": figures,
            "windows": dashboard_service.WINDOWS,
            "charts": _dashboard_charts(figures),
            "error": error,
        },
        status=422 if error else 200,
    )


def _dashboard_charts(figures: dashboard_service.DashboardFigures) -> dict[str, charts.BarChart]:
    return {
        "claim": charts.bar_chart(
            title="Time to claim",
            rows=[(b.label, b.count) for b in figures.time_to_claim.buckets],
        ),
        "resolve": charts.bar_chart(
            title="Time to resolve",
            rows=[(b.label, b.count) for b in figures.time_to_resolve.buckets],
        ),
        "pairs": charts.bar_chart(
            title="Handoffs by channel pair",
            rows=[(c.label, c.count) for c in figures.channel_pairs],
        ),
        "specialists": charts.bar_chart(
            title="Escalations claimed per specialist",
            rows=[(s.username, s.claims) for s in figures.specialists],
        ),
        "waiting": charts.bar_chart(
            title="Escalations waiting now (minutes)",
            rows=[(w.name, round(w.age_seconds / 60, 1)) for w in figures.waiting],
            unit=" min",
        ),
    }
