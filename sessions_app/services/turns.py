"""Adding and deleting turns. A turn is durable the moment add returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from sessions_app import embeddings, events
from sessions_app.actors import Actor
from sessions_app.context_windows import ContextWindow, Said, context_windows, said_of
from sessions_app.errors import Conflict, InvalidInput, TooLarge
from sessions_app.models import Session, SessionStatus, StoredVector, Turn
from sessions_app.selectors import session_locked, turns_page
from sessions_app.services.audit import audit_record
from sessions_app.services.brief_extract import turn_extract
from sessions_app.services.channels import (
    channels_of,
    channels_record,
    handoffs_channel_after,
)
from sessions_app.services.event_log import EventInput, events_record, turn_data
from sessions_app.services.handoffs import held_by_check, session_reopen
from sessions_app.services.turn_context import NEIGHBOUR_FIELDS, reread_runs
from sessions_app.validation import doc_id_check, embedding_check, metadata_check, text_check
from sessions_app.write_slots import write_slot

logger = logging.getLogger(__name__)

CLIENT_EMBEDDING = "client"


@dataclass(frozen=True)
class DocInput:
    id: str
    text: str
    metadata: dict[str, str] = field(default_factory=dict)
    embedding: list[float] | None = None


@dataclass(frozen=True)
class UpsertResult:
    added: int
    updated: int
    unchanged: int
    doc_count: int
    last_seq: int
    # Turns stored while the model was unavailable, embedded later by a backfill.
    embedding_pending: int = 0


def docs_check(docs: list[DocInput]) -> None:
    if not docs:
        raise InvalidInput("docs must contain at least one document")
    if len(docs) > settings.MOSS_MAX_DOCS_PER_CALL:
        limit = settings.MOSS_MAX_DOCS_PER_CALL
        raise TooLarge(
            f"{len(docs)} docs in one call, the limit is {limit} (MOSS_MAX_DOCS_PER_CALL); "
            "split the call"
        )
    total_chars = sum(len(doc.text) for doc in docs)
    if total_chars > settings.MOSS_MAX_CALL_TEXT_CHARS:
        # Checked before anything is embedded: the model's work grows with the text.
        raise TooLarge(
            f"the docs of this call have {total_chars} characters of text in all, the limit "
            f"is MOSS_MAX_CALL_TEXT_CHARS={settings.MOSS_MAX_CALL_TEXT_CHARS}; "
            "split them into several calls"
        )
    seen: set[str] = set()
    for index, doc in enumerate(docs):
        where = f"docs[{index}]"
        doc_id_check(doc.id, where=where)
        if doc.id in seen:
            raise InvalidInput(f"{where}: duplicate id {doc.id!r} in this call")
        seen.add(doc.id)
        text_check(doc.text, where=where)
        metadata_check(doc.metadata, where=where)
        if doc.embedding is not None:
            embedding_check(doc.embedding, where=where)


def _extract(text: str, extracts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Worked out before the lock; a text another writer stored meanwhile is done now."""
    return extracts[text] if text in extracts else turn_extract(text)


def _needs_model(doc: DocInput, stored: dict[str, str]) -> bool:
    return doc.embedding is None and stored.get(doc.id) != doc.text


def _embed(
    texts: list[str], windows: list[ContextWindow]
) -> tuple[dict[str, StoredVector], dict[ContextWindow, StoredVector]]:
    """Vectors of `texts` by text and of context `windows` by window, encoded at once; none
    while the model is unavailable (those turns are stored pending)."""
    if not texts and not windows:
        return {}, {}
    if not connection.in_atomic_block:
        # Encoding takes tens of milliseconds without the database: the pooled connection
        # goes back meanwhile, so that other requests (a query) do not wait for one.
        connection.close()
    try:
        vectors, context_vectors = embeddings.passages_embed_with_contexts(texts, windows)
    except embeddings.ModelUnavailable:
        return {}, {}
    return (
        dict(zip(texts, map(StoredVector, vectors), strict=True)),
        dict(zip(windows, map(StoredVector, context_vectors), strict=True)),
    )


@dataclass(frozen=True)
class _ContextPlan:
    """The context windows a call needs encoded (sessions_app/context_windows.py): for the
    docs the server embeds, and for the stored turns after the ones whose text or role it
    changes."""

    own: dict[str, ContextWindow]  # doc id -> its window
    following: dict[str, tuple[Turn, ContextWindow]]  # doc id -> (the turn, its new window)

    def windows(self) -> list[ContextWindow]:
        return list(dict.fromkeys([*self.own.values(), *(w for _, w in self.following.values())]))


def _context_plan(
    *, session: Session, docs: list[DocInput], existing: dict[str, Turn], internal: bool
) -> _ContextPlan:
    said_now = {doc.id: said_of(doc.text, doc.metadata) for doc in docs}
    if internal:
        # Private notes are in no one's context and have none: a bot's search must not
        # rank customer-facing turns by what a note says.
        return _ContextPlan(
            own={
                doc.id: ContextWindow(previous=None, turns=(said_now[doc.id],))
                for doc in docs
                if doc.embedding is None
                and (doc.id not in existing or Said.of(existing[doc.id]) != said_now[doc.id])
            },
            following={},
        )
    docs_by_id = {doc.id: doc for doc in docs}
    plan = _ContextPlan(own={}, following={})

    def said(turn: Turn) -> Said:
        return said_now.get(turn.doc_id) or Said.of(turn)

    # Each changed turn, and the stored turns after it that its window may have reached,
    # read again from the turn before it; runs that meet are read as one.
    changed = [
        existing[doc.id]
        for doc in docs
        if doc.id in existing and said_now[doc.id] != Said.of(existing[doc.id])
    ]
    runs = reread_runs(session=session, points=[(turn.seq, turn) for turn in changed])
    for previous, run in runs:
        _plan_run(
            plan,
            previous=None if previous is None else said(previous),
            run=[(turn.doc_id, said(turn), turn) for turn in run],
            docs_by_id=docs_by_id,
        )
    # New turns follow the session's last turn, then each other, in the call's order.
    last = (
        Turn.objects.filter(session=session, internal=False)
        .only(*NEIGHBOUR_FIELDS)
        .order_by("-seq")
        .first()
    )
    appended: list[tuple[str, Said, Turn | None]] = [
        (doc.id, said_now[doc.id], None) for doc in docs if doc.id not in existing
    ]
    _plan_run(
        plan,
        previous=None if last is None else said(last),
        run=appended,
        docs_by_id=docs_by_id,
    )
    return plan


def _plan_run(
    plan: _ContextPlan,
    *,
    previous: Said | None,
    run: list[tuple[str, Said, Turn | None]],
    docs_by_id: dict[str, DocInput],
) -> None:
    """The windows of a run of turns (doc id, what it says, the stored turn if any): for
    the call's docs the server embeds, and for stored turns outside the call that have a
    context vector of ours (a client's vector has none, but its text is context)."""
    windows = context_windows(previous=previous, turns=[said for _, said, _ in run])
    for (doc_id, _, turn), window in zip(run, windows, strict=True):
        doc = docs_by_id.get(doc_id)
        if doc is not None:
            if doc.embedding is None:
                plan.own[doc_id] = window
        elif turn is not None and turn.model_id != CLIENT_EMBEDDING:
            plan.following[doc_id] = (turn, window)


def _kind_check(docs: list[DocInput], existing: dict[str, Turn], *, internal: bool) -> None:
    """A note's id is never written as a customer-facing turn, nor the other way round."""
    for index, doc in enumerate(docs):
        if doc.id in existing and existing[doc.id].internal != internal:
            raise Conflict(f"docs[{index}]: id {doc.id!r} is in use by another turn")


def turns_upsert(
    *,
    session: Session,
    docs: list[DocInput],
    actor: Actor,
    channel: str = "",
    internal: bool = False,
    holder: User | None = None,
) -> UpsertResult:
    """Insert new ids, update changed ones, all or nothing.

    With a `holder` (a specialist's reply), they are stored only while that user
    holds the session, checked under the session's lock: a reply racing a take-over,
    a resolve or a hand-back is refused (Conflict), never stored after it.

    `internal` turns are private notes (Turn.internal): they take a sequence
    number like any turn but count in no doc_count, write nothing to the event
    log bots read and never reopen a resolved session. An id is a note or a
    customer-facing turn for good: writing it as the other kind is refused.

    Embeddings are computed before the session row is locked, so concurrent
    writers wait on each other only for the short write itself. A process stores
    at most MOSS_WRITE_SLOTS calls at once (sessions_app/write_slots.py). While the
    model is unavailable the turns are stored at once with their embedding
    pending (NULL); keyword search finds them and a backfill embeds them
    (services/backfill.py).
    """
    docs_check(docs)
    with write_slot(docs=len(docs)):
        return _turns_store(
            session=session,
            docs=docs,
            actor=actor,
            channel=channel,
            internal=internal,
            holder=holder,
        )


def _turns_store(
    *,
    session: Session,
    docs: list[DocInput],
    actor: Actor,
    channel: str,
    internal: bool,
    holder: User | None,
) -> UpsertResult:
    ids = [doc.id for doc in docs]
    stored = {t.doc_id: t for t in Turn.objects.filter(session=session, doc_id__in=ids)}
    _kind_check(docs, stored, internal=internal)
    stored_texts = {doc_id: turn.text for doc_id, turn in stored.items()}
    plan = _context_plan(session=session, docs=docs, existing=stored, internal=internal)
    to_embed = [doc.text for doc in docs if _needs_model(doc, stored_texts)]
    # The brief's facts and commitments, worked out before the session lock is taken.
    extracts = {
        doc.text: turn_extract(doc.text) for doc in docs if stored_texts.get(doc.id) != doc.text
    }
    vectors, context_vectors = _embed(to_embed, plan.windows())
    model_failed = len(vectors) < len(set(to_embed)) or len(context_vectors) < len(plan.windows())

    with transaction.atomic():
        # The session row lock orders concurrent writers: sequence numbers are
        # issued under it, so they are unique and leave no gaps.
        locked = session_locked(session=session)
        if holder is not None:
            held_by_check(locked, holder)
        if Session.project.is_cached(session):  # spares a query for it below
            locked.project = session.project
        existing = {t.doc_id: t for t in Turn.objects.filter(session=locked, doc_id__in=ids)}
        _kind_check(docs, existing, internal=internal)
        # A writer that committed between our read and the lock may have
        # changed a text; embed whatever is still missing.
        locked_texts = {doc_id: turn.text for doc_id, turn in existing.items()}
        plan = _context_plan(session=locked, docs=docs, existing=existing, internal=internal)
        if not model_failed:
            wanted = [doc.text for doc in docs if _needs_model(doc, locked_texts)]
            more, more_contexts = _embed(
                [text for text in wanted if text not in vectors],
                [window for window in plan.windows() if window not in context_vectors],
            )
            vectors.update(more)
            context_vectors.update(more_contexts)

        writer = _writer(actor)
        new_turns: list[Turn] = []
        changed: list[Turn] = []
        # Turns whose context vector alone changes: their predecessor was edited.
        context_only: list[Turn] = []
        unchanged = 0
        edited_at = timezone.now()
        for doc in docs:
            turn = existing.get(doc.id)
            if turn is None:
                locked.last_seq += 1
                new_turns.append(
                    Turn(
                        session=locked,
                        doc_id=doc.id,
                        seq=locked.last_seq,
                        text=doc.text,
                        metadata=doc.metadata,
                        embedding=_vector(doc, vectors),
                        context_embedding=_context_vector(doc, plan, context_vectors),
                        model_id=_model_of(doc, locked),
                        internal=internal,
                        extracted=_extract(doc.text, extracts),
                        **writer,
                    )
                )
            elif _is_changed(turn, doc):
                # A new text needs a new embedding: computed, supplied, or pending.
                if doc.embedding is not None or turn.text != doc.text:
                    turn.embedding = _vector(doc, vectors)
                    turn.model_id = _model_of(doc, locked)
                if doc.embedding is not None or doc.id in plan.own:
                    turn.context_embedding = _context_vector(doc, plan, context_vectors)
                if turn.text != doc.text or turn.extracted is None:
                    turn.extracted = _extract(doc.text, extracts)
                turn.text = doc.text
                turn.metadata = doc.metadata
                turn.updated_at = edited_at  # bulk_update does not apply auto_now
                for name, value in writer.items():
                    setattr(turn, name, value)
                changed.append(turn)
            else:
                if doc.id in plan.own:  # its predecessor changed in this call
                    turn.context_embedding = _context_vector(doc, plan, context_vectors)
                    context_only.append(turn)
                unchanged += 1
        for following, window in plan.following.values():
            following.context_embedding = context_vectors.get(window)
            context_only.append(following)
        Turn.objects.bulk_create(new_turns)
        if new_turns:
            handoffs_channel_after(session=locked, first=new_turns[0])
        if changed:
            Turn.objects.bulk_update(
                changed,
                [
                    "text",
                    "metadata",
                    "embedding",
                    "context_embedding",
                    "model_id",
                    "extracted",
                    "updated_at",
                    *writer,
                ],
            )
        if context_only:
            Turn.objects.bulk_update(context_only, ["context_embedding"])
        if not internal:
            locked.doc_count += len(new_turns)
        # A note's "console" is not a channel the customer used.
        written = set() if internal else channels_of(t.metadata for t in [*new_turns, *changed])
        kept = ["channels"] if channels_record(session=locked, channels=written) else []
        locked.save(update_fields=["last_seq", "doc_count", "updated_at", *kept])
        if new_turns or changed:
            audit_record(
                project=locked.project,
                session=locked,
                kind="note.added" if internal else "turns.added",
                actor=actor,
                channel=channel or _first_channel(docs),
                data={
                    "added": [t.doc_id for t in new_turns],
                    "updated": [t.doc_id for t in changed],
                    "seqs": [t.seq for t in new_turns],
                },
            )
            if not internal:
                events_record(
                    session=locked,
                    actor=actor,
                    events=[EventInput("turn.added", turn_data(t)) for t in new_turns]
                    + [EventInput("turn.updated", turn_data(t)) for t in changed],
                )
            if (
                not internal
                and locked.status == SessionStatus.RESOLVED
                and any(t.metadata.get("role") == "customer" for t in new_turns)
            ):
                session_reopen(session=locked, actor=actor)
            events.session_changed(
                session=locked,
                kind="turns.added",
                data={
                    "doc_ids": [t.doc_id for t in new_turns + changed],
                    "edited": [t.seq for t in changed],  # open pages replace these
                },
            )
    session.last_seq, session.doc_count = locked.last_seq, locked.doc_count
    pending = sum(1 for turn in new_turns + changed if turn.embedding is None)
    if pending:
        logger.warning("%s: %d turns stored with their embedding pending", locked.name, pending)
    return UpsertResult(
        added=len(new_turns),
        updated=len(changed),
        unchanged=unchanged,
        doc_count=locked.doc_count,
        last_seq=locked.last_seq,
        embedding_pending=pending,
    )


def _writer(actor: Actor) -> dict[str, Any]:
    """The turn's provenance: the key or the user that stored it (Turn.written_by_*)."""
    return {
        "written_by_key": actor.api_key,
        "written_by_key_prefix": actor.api_key.prefix if actor.api_key else "",
        "written_by_user": actor.user if actor.api_key is None else None,
    }


def _vector(doc: DocInput, vectors: dict[str, StoredVector]) -> StoredVector | None:
    """The supplied or computed embedding; None while it is pending."""
    if doc.embedding is not None:
        return StoredVector(np.asarray(doc.embedding, dtype=np.float32))
    return vectors.get(doc.text)


def _context_vector(
    doc: DocInput, plan: _ContextPlan, vectors: dict[ContextWindow, StoredVector]
) -> StoredVector | None:
    """The computed context vector; None for a client-supplied embedding, or while pending."""
    if doc.embedding is not None or doc.id not in plan.own:
        return None
    return vectors.get(plan.own[doc.id])


def _model_of(doc: DocInput, session: Session) -> str:
    return CLIENT_EMBEDDING if doc.embedding is not None else session.model_id


def _is_changed(turn: Turn, doc: DocInput) -> bool:
    if turn.text != doc.text or turn.metadata != doc.metadata:
        return True
    return doc.embedding is not None and (
        turn.embedding is None or not np.allclose(turn.embedding, doc.embedding)
    )


def _first_channel(docs: list[DocInput]) -> str:
    return next((d.metadata["channel"] for d in docs if d.metadata.get("channel")), "")


def thread_read(
    *,
    session: Session,
    actor: Actor,
    after_seq: int = 0,
    limit: int = 100,
    include_internal: bool = False,
) -> tuple[list[Turn], int | None]:
    """A page of the thread in sequence order, and the cursor for the next one.

    Reading a thread from its start is audited: supervisors see who read what.
    Private notes are left out unless asked for.
    """
    page = turns_page(
        session=session, after_seq=after_seq, limit=limit + 1, include_internal=include_internal
    )
    if after_seq == 0:
        audit_record(project=session.project, session=session, kind="session.read", actor=actor)
    if len(page) > limit:
        return page[:limit], page[limit - 1].seq
    return page, None


def _following_recontext(*, session: Session, deleted_seqs: list[int]) -> None:
    """The turns after each deleted one that its windows may have reached are read again
    from the turn now before them (a few texts, encoded under the session lock), or
    pending while the model is unavailable. Turns with client-supplied embeddings have no
    context vector, but are read as context."""
    runs = reread_runs(session=session, points=[(seq, None) for seq in deleted_seqs])
    plan = _ContextPlan(own={}, following={})
    for previous, run in runs:
        _plan_run(
            plan,
            previous=None if previous is None else Said.of(previous),
            run=[(turn.doc_id, Said.of(turn), turn) for turn in run],
            docs_by_id={},
        )
    if not plan.following:
        return
    _, vectors = _embed([], plan.windows())
    for turn, window in plan.following.values():
        turn.context_embedding = vectors.get(window)
    Turn.objects.bulk_update([turn for turn, _ in plan.following.values()], ["context_embedding"])


def turns_delete(*, session: Session, doc_ids: list[str], actor: Actor) -> int:
    """Delete customer-facing turns by id; private notes are not reached this way."""
    if not doc_ids:
        raise InvalidInput("ids must contain at least one id")
    with transaction.atomic():
        locked = session_locked(session=session)
        if Session.project.is_cached(session):  # spares a query for it below
            locked.project = session.project
        turns = Turn.objects.filter(session=locked, doc_id__in=doc_ids, internal=False)
        doomed = list(turns.order_by("seq").values_list("doc_id", "seq"))
        deleted, _ = turns.delete()
        if deleted:
            _following_recontext(session=locked, deleted_seqs=[seq for _, seq in doomed])
            locked.doc_count -= deleted
            locked.save(update_fields=["doc_count", "updated_at"])
            audit_record(
                project=locked.project,
                session=locked,
                kind="turns.deleted",
                actor=actor,
                data={"ids": doc_ids, "deleted": deleted},
            )
            events_record(
                session=locked,
                actor=actor,
                events=[
                    EventInput("turn.deleted", {"id": doc_id, "seq": seq}) for doc_id, seq in doomed
                ],
            )
            events.session_changed(
                session=locked, kind="turns.deleted", data={"deleted": [seq for _, seq in doomed]}
            )
    session.doc_count = locked.doc_count
    return deleted
