"""Context vectors computed again, a session at a time (`manage.py reencode_contexts`).

Stored context vectors are never re-encoded by themselves: when a release changes how
they are computed (late chunking, 26 November: README, "Search quality"), the earlier
kind keeps ranking beside the new one. An operator who wants every vector of the
current kind runs this once; sessions stay in use meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import transaction

from sessions_app import embeddings
from sessions_app.context_windows import ContextWindow, Said, context_windows
from sessions_app.models import Project, Session, StoredVector, Turn
from sessions_app.services.turn_context import NEIGHBOUR_FIELDS
from sessions_app.services.turns import CLIENT_EMBEDDING

logger = logging.getLogger(__name__)

# Turns read again at a time, under the session's lock (an add to that session waits for
# one chunk's encode, a fraction of a second, not for the whole session).
CHUNK_TURNS = 64


def session_contexts_reencode(
    *, session: Session, chunk: int = CHUNK_TURNS, plain: bool = False
) -> int:
    """Every context vector of the session computed again, as if its turns had been
    added in calls of `chunk` turns, and each private note alone (as they are stored);
    how many. Turns with client-supplied embeddings have none, but are read as context.
    `plain`: each turn's own vector too, by the stored-text encoder (after the release
    that moved it to the int8 twin); a turn still waiting for its embedding is left to
    the backfill. Each chunk is read, encoded and written under the session lock that
    adds, edits and deletes take, so none of them is overwritten by a vector of text it
    replaced."""
    done = 0
    for internal in (False, True):
        after = 0
        while True:
            with transaction.atomic():
                Session.objects.select_for_update().filter(pk=session.pk).exists()
                turns = list(
                    Turn.objects.filter(session=session, internal=internal, seq__gt=after)
                    .only(*NEIGHBOUR_FIELDS, *(("embedding",) if plain else ()))
                    .order_by("seq")[:chunk]
                )
                if not turns:
                    break
                windows = _windows(session=session, turns=turns, internal=internal)
                ours = [
                    (turn, window)
                    for turn, window in zip(turns, windows, strict=True)
                    if turn.model_id != CLIENT_EMBEDDING
                ]
                embedded = [turn for turn, _ in ours if plain and turn.embedding is not None]
                # On the pools of text being stored, a few nice steps down: queries first.
                own_vectors, vectors = embeddings.passages_embed_with_contexts(
                    [turn.text for turn in embedded], [window for _, window in ours]
                )
                for (turn, _), vector in zip(ours, vectors, strict=True):
                    turn.context_embedding = StoredVector(vector)
                for turn, vector in zip(embedded, own_vectors, strict=True):
                    turn.embedding = StoredVector(vector)
                Turn.objects.bulk_update([turn for turn, _ in ours], ["context_embedding"])
                if embedded:  # only those: a pending one may be embedded meanwhile
                    Turn.objects.bulk_update(embedded, ["embedding"])
            done += len(ours)
            after = turns[-1].seq
    return done


def _windows(*, session: Session, turns: list[Turn], internal: bool) -> list[ContextWindow]:
    if internal:  # a note is in no one's context and has none
        return [ContextWindow(previous=None, turns=(Said.of(turn),)) for turn in turns]
    previous = (
        Turn.objects.filter(session=session, internal=False, seq__lt=turns[0].seq)
        .only(*NEIGHBOUR_FIELDS)
        .order_by("-seq")
        .first()
    )
    return context_windows(
        previous=None if previous is None else Said.of(previous),
        turns=[Said.of(turn) for turn in turns],
    )


def contexts_reencode(
    *, project: Project | None = None, after_session: int = 0, plain: bool = False
) -> Iterator[int]:
    """session_contexts_reencode for every session (of `project`, or of all), in id order
    from after `after_session`: yields each session's id once it is done, so that an
    interrupted run can go on from there. Raises ModelUnavailable when the model fails;
    the sessions done until then keep their new vectors."""
    sessions = Session.objects.filter(pk__gt=after_session).order_by("pk")
    if project is not None:
        sessions = sessions.filter(project=project)
    for session in sessions.only("pk").iterator(chunk_size=500):
        count = session_contexts_reencode(session=session, plain=plain)
        logger.info("session %d: %d context vectors computed again", session.pk, count)
        yield session.pk
