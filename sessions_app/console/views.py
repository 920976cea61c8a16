"""The specialist console: queue, session view and its actions.

Each view parses, reaches the session through access.session_get_for_console
(a session the user may not open, or of another project, is a 404), calls one
service and renders. A claim reaches any session of the user's projects: the
claim service decides, and says who holds it or where it is routed. One
template serves a page and, for htmx requests, its partial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event
from django_htmx.middleware import HtmxDetails

from sessions_app.access import membership_get, session_get_for_console, session_get_for_user
from sessions_app.console import fragments
from sessions_app.console.forms import (
    HandBackForm,
    NoteForm,
    ReassignForm,
    ReplyForm,
    ResolveForm,
    SupervisorNoteForm,
    TransferForm,
    form_errors,
)
from sessions_app.console.selectors import attention_of
from sessions_app.errors import DomainError, InvalidInput
from sessions_app.models import Session
from sessions_app.services import console
from sessions_app.services.brief import session_brief
from sessions_app.services.canned import canned_for_session
from sessions_app.services.handoffs import (
    session_claim,
    session_hand_back,
    session_resolve,
    session_transfer,
)
from sessions_app.services.inbox import session_seen_mark
from sessions_app.services.supervision import session_reassign, session_release, session_take_over

SEARCH_TOP_K = 10


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _user(request: HtmxHttpRequest) -> User:
    assert isinstance(request.user, User), "login_required lets only signed-in users through"
    return request.user


def _session_url(session: Session) -> str:
    return reverse("console:session", args=[session.project.public_id, session.name])


def _notice(
    request: HtmxHttpRequest, message: str, *, status: int, notice_id: str
) -> HttpResponse | None:
    """For htmx, the message swapped into the page's notice area; None otherwise."""
    if not request.htmx:
        return None
    html = fragments.notice_html(notice_id=notice_id, message=message, level="error")
    response = HttpResponse(html, status=status)
    return reswap(retarget(response, f"#{notice_id}"), "outerHTML")


@vary_on_headers("HX-Request")
@login_required
@require_GET
def queue(request: HtmxHttpRequest) -> HttpResponse:
    return _queue_page(request)


def _queue_page(request: HtmxHttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    query, bad_query = fragments.inbox_query_parse(request.GET, user=_user(request))
    if bad_query and not error:
        error, status = bad_query, 422
    context = fragments.queue_context(user=_user(request), query=query)
    template = "console/_queue.html" if request.htmx else "console/queue.html"
    context.update(
        error=error,
        retry_seconds=settings.MOSS_CONSOLE_RETRY_SECONDS,
        heartbeat_seconds=settings.MOSS_CONSOLE_HEARTBEAT_SECONDS,
        oob=bool(request.htmx),
    )
    return render(request, template, context, status=status)


@login_required
@require_GET
def presence(request: HtmxHttpRequest) -> HttpResponse:
    """The supervisor's view of the team: who is online and what each holds (polled)."""
    return HttpResponse(fragments.presence_html(user=_user(request)))


@login_required
@require_POST
def claim(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    _, session = session_get_for_user(user=_user(request), project_id=project_id, name=name)
    try:
        session_claim(session=session, user=_user(request))
    except DomainError as exc:
        # The notice goes where the claim button was: the queue or the session view.
        notice_id = request.POST.get("notice", "queue-notice")
        if notice_id not in ("queue-notice", "session-notice"):
            notice_id = "queue-notice"
        return _notice(request, exc.message, status=exc.status, notice_id=notice_id) or (
            _queue_page(request, error=exc.message, status=exc.status)
        )
    url = _session_url(session)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@vary_on_headers("HX-Request")
@login_required
@require_GET
def session_view(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    _, session = session_get_for_console(user=_user(request), project_id=project_id, name=name)
    query = request.GET.get("q", "").strip()
    if request.htmx and request.htmx.target == "search-results":
        return _search_results(request, session, query)
    if "before" in request.GET:
        before = _cursor_value(request.GET.get("before"))
        chunk = console.console_thread_latest(session=session, before_seq=before)
        context = {"chunk": chunk, "items": chunk.items, "show_earlier": True}
        return render(request, "console/_thread_items.html", context)
    console.console_session_viewed(session=session, user=_user(request))
    session_seen_mark(session_id=session.pk, user=_user(request), seq=session.last_seq)
    return _session_page(request, session, query=query)


def _search(session: Session, query: str) -> tuple[list[Any], str]:
    if not query:
        return [], ""
    try:
        hits = console.console_search(session_ids=[session.pk], query=query, top_k=SEARCH_TOP_K)
    except InvalidInput as exc:
        return [], exc.message
    return hits, ""


def _search_results(request: HtmxHttpRequest, session: Session, query: str) -> HttpResponse:
    hits, error = _search(session, query)
    context = {"session": session, "query": query, "hits": hits, "search_error": error}
    return render(request, "console/_search_results.html", context, status=422 if error else 200)


def _session_page(
    request: HtmxHttpRequest,
    session: Session,
    *,
    query: str = "",
    error: str = "",
    status: int = 200,
    bound: dict[str, Form] | None = None,
) -> HttpResponse:
    user = _user(request)
    hits, search_error = _search(session, query)
    context = {
        **fragments.side_context(session=session, user=user, **(bound or {})),
        "chunk": console.console_thread_latest(session=session),
        "relevant": console.console_relevant(session=session),
        "customer": console.console_customer(
            session=session,
            membership=membership_get(user=user, project_id=session.project.public_id),
        ),
        "canned": canned_for_session(session=session),
        "brief": session_brief(session=session),
        "query": query,
        "hits": hits,
        "search_error": search_error,
        "error": error,
        "retry_seconds": settings.MOSS_CONSOLE_RETRY_SECONDS,
        "heartbeat_seconds": settings.MOSS_CONSOLE_HEARTBEAT_SECONDS,
        "attention": attention_of(user=user),
    }
    if search_error and status == 200:
        status = 422  # as the search partial answers the same query
    return render(request, "console/session.html", context, status=status)


def _cursor_value(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


@login_required
@require_GET
def session_updates(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    """What the websocket would send after the page's cursor (after_seq, version): the
    fragment a page polls while its live connection is down (static/js/console.js)."""
    user = _user(request)
    watched = fragments.session_watch(user=user, project_public_id=project_id, name=name)
    update = watched and fragments.session_update_html(
        user=user,
        watched=watched,
        after_seq=_cursor_value(request.GET.get("after_seq")),
        after_version=_cursor_value(request.GET.get("version")),
        held_before=request.GET.get("holds") == "1",
        supervising_before=request.GET.get("supervising") == "1",
    )
    if watched is None or not update:
        raise Http404("no such session")
    session_seen_mark(session_id=watched.pk, user=user, seq=update.last_seq)
    return HttpResponse(update.html)


def _failed(
    request: HtmxHttpRequest, session: Session, message: str, status: int, **bound: Form
) -> HttpResponse:
    return _notice(request, message, status=status, notice_id="session-notice") or (
        _session_page(request, session, error=message, status=status, bound=bound)
    )


@login_required
@require_POST
def reply(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    user = _user(request)
    _, session = session_get_for_console(user=user, project_id=project_id, name=name)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _failed(request, session, form_errors(form), 422, reply_form=form)
    try:
        console.console_reply(
            session=session,
            user=user,
            text=form.cleaned_data["text"],
            channel=form.cleaned_data["channel"],
        )
    except DomainError as exc:
        return _failed(request, session, exc.message, exc.status, reply_form=form)
    if not request.htmx:
        return redirect(_session_url(session) + "#reply")
    fresh = ReplyForm(initial={"channel": form.cleaned_data["channel"]})
    context = {
        "session": session,
        "reply_form": fresh,
        "holds": True,
        "canned": canned_for_session(session=session),
    }
    response = render(request, "console/_reply_form.html", context)
    # The page asks its websocket for what it has not seen yet, the new turn included.
    return trigger_client_event(response, "thread-sync")


@login_required
@require_POST
def note(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    """A private note: anyone who may open the session may write one (services/console.py)."""
    user = _user(request)
    _, session = session_get_for_console(user=user, project_id=project_id, name=name)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _failed(request, session, form_errors(form), 422, note_form=form)
    try:
        console.console_note(session=session, user=user, text=form.cleaned_data["text"])
    except DomainError as exc:
        return _failed(request, session, exc.message, exc.status, note_form=form)
    if not request.htmx:
        return redirect(_session_url(session) + "#thread")
    context = {"session": session, "note_form": NoteForm()}
    response = render(request, "console/_note_form.html", context)
    return trigger_client_event(response, "thread-sync")


def _handoff_action(
    request: HtmxHttpRequest,
    project_id: str,
    name: str,
    *,
    form_name: str,
    make_form: Callable[[Session, User], Form],
    act: Callable[[Session, User, dict[str, Any]], str],
) -> HttpResponse:
    """Hand back, transfer, resolve: validate, call the service, go back to the queue."""
    user = _user(request)
    _, session = session_get_for_console(user=user, project_id=project_id, name=name)
    form = make_form(session, user)
    if not form.is_valid():
        return _failed(request, session, form_errors(form), 422, **{form_name: form})
    try:
        done = act(session, user, form.cleaned_data)
    except DomainError as exc:
        return _failed(request, session, exc.message, exc.status, **{form_name: form})
    messages.success(request, done)
    url = reverse("console:queue")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def hand_back(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        session_hand_back(session=session, user=user, bot=data["bot"], note=data["note"])
        return f"{session.name} handed back to {data['bot']}."

    return _handoff_action(
        request,
        project_id,
        name,
        form_name="hand_back_form",
        make_form=lambda session, user: HandBackForm(request.POST),
        act=act,
    )


@login_required
@require_POST
def transfer(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        to_kind, to_target = console.transfer_target_parse(data["to"])
        session_transfer(
            session=session, user=user, to_kind=to_kind, to_target=to_target, note=data["note"]
        )
        return f"{session.name} transferred to {to_target or 'the queue'}."

    return _handoff_action(
        request,
        project_id,
        name,
        form_name="transfer_form",
        make_form=lambda session, user: TransferForm(request.POST, session=session, user=user),
        act=act,
    )


@login_required
@require_POST
def resolve(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        session_resolve(session=session, user=user, note=data["note"])
        return f"{session.name} resolved."

    return _handoff_action(
        request,
        project_id,
        name,
        form_name="resolve_form",
        make_form=lambda session, user: ResolveForm(request.POST),
        act=act,
    )


def _supervisor_action(
    request: HtmxHttpRequest,
    project_id: str,
    name: str,
    *,
    form_name: str,
    make_form: Callable[[Session], Form],
    act: Callable[[Session, User, dict[str, Any]], str],
) -> HttpResponse:
    """Take over, reassign, release: the service checks the role and that someone holds it."""
    user = _user(request)
    _, session = session_get_for_console(user=user, project_id=project_id, name=name)
    form = make_form(session)
    if not form.is_valid():
        return _failed(request, session, form_errors(form), 422, **{form_name: form})
    try:
        done = act(session, user, form.cleaned_data)
    except DomainError as exc:
        return _failed(request, session, exc.message, exc.status, **{form_name: form})
    messages.success(request, done)
    url = _session_url(session)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def take_over(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        holder = session.holder_label
        session_take_over(session=session, supervisor=user, note=data["note"])
        return f"You took {session.name} over from {holder}."

    return _supervisor_action(
        request,
        project_id,
        name,
        form_name="take_over_form",
        make_form=lambda session: SupervisorNoteForm(request.POST),
        act=act,
    )


@login_required
@require_POST
def reassign(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        to_kind, to_target = console.transfer_target_parse(data["to"])
        session_reassign(
            session=session,
            supervisor=user,
            to_kind=to_kind,
            to_target=to_target,
            note=data["note"],
        )
        return f"{session.name} reassigned to {data['to'].replace(':', ' ')}."

    return _supervisor_action(
        request,
        project_id,
        name,
        form_name="reassign_form",
        make_form=lambda session: ReassignForm(request.POST, session=session),
        act=act,
    )


@login_required
@require_POST
def release(request: HtmxHttpRequest, project_id: str, name: str) -> HttpResponse:
    def act(session: Session, user: User, data: dict[str, Any]) -> str:
        session_release(session=session, supervisor=user, note=data["note"])
        return f"{session.name} released to the queue."

    return _supervisor_action(
        request,
        project_id,
        name,
        form_name="release_form",
        make_form=lambda session: SupervisorNoteForm(request.POST),
        act=act,
    )
