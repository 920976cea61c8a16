"""Embedding turns that were stored while the model was unavailable, and the context
vectors of turns stored before they existed (sessions_app/context_windows.py)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery

from sessions_app import embeddings
from sessions_app.context_windows import ContextWindow, Said, said_of
from sessions_app.models import StoredVector, Turn
from sessions_app.services.turns import CLIENT_EMBEDDING

logger = logging.getLogger(__name__)

# Each condition is the predicate of a partial index (Turn.Meta), so finding the
# pending turns reads those indexes, not the table: the workers look every few seconds.
_PLAIN_PENDING = Q(embedding__isnull=True)
_CONTEXT_PENDING = Q(context_embedding__isnull=True) & ~Q(model_id=CLIENT_EMBEDDING)


def turns_embed_pending(*, batch_size: int = 64) -> int:
    """Embed every pending turn (its plain and/or context vector), a batch at a time;
    how many turns were embedded.

    A batch's rows stay locked while it is encoded (SKIP LOCKED), so several
    server processes share the backlog without embedding a turn twice, and a
    writer changing one of those texts waits for the batch instead of having
    its new text overwritten by the old text's vector. A context vector reads
    the predecessor as it is now; an edit of that predecessor afterwards
    recomputes it again (services/turns.py). Raises ModelUnavailable when the
    model fails; what was embedded until then is kept.
    """
    done = 0
    for pending in (_PLAIN_PENDING, _CONTEXT_PENDING):
        done += _embed_batches(Turn.objects.filter(pending), batch_size=batch_size)
    if done:
        logger.info("embedded %d turns that were pending", done)
    return done


def _embed_batches(pending: QuerySet[Turn], *, batch_size: int) -> int:
    before = Turn.objects.filter(
        session=OuterRef("session"), seq__lt=OuterRef("seq"), internal=False
    ).order_by("-seq")
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                pending.select_for_update(skip_locked=True, of=("self",))
                .order_by("id")
                .only(
                    "id",
                    "text",
                    "metadata",
                    "model_id",
                    "internal",
                    "embedding",
                    "context_embedding",
                )
                .annotate(
                    previous_text=Subquery(before.values("text")[:1]),
                    previous_metadata=Subquery(before.values("metadata")[:1]),
                )[:batch_size]
            )
            if not batch:
                break
            wanted: dict[int, tuple[str | None, ContextWindow | None]] = {}
            for turn in batch:
                previous: Said | None = None
                if turn.previous_text is not None and not turn.internal:
                    previous = said_of(turn.previous_text, turn.previous_metadata or {})
                wanted[turn.pk] = (
                    turn.text if turn.embedding is None else None,
                    # The shortest window: the turn after its predecessor.
                    ContextWindow(previous=previous, turns=(Said.of(turn),))
                    if turn.context_embedding is None and turn.model_id != CLIENT_EMBEDDING
                    else None,
                )
            plains = sorted({plain for plain, _ in wanted.values() if plain})
            windows = list(dict.fromkeys(window for _, window in wanted.values() if window))
            encoded = embeddings.passages_embed_with_contexts(plains, windows)
            vectors = dict(zip(plains, encoded[0], strict=True))
            context_vectors = dict(zip(windows, encoded[1], strict=True))
            for turn in batch:
                plain, context = wanted[turn.pk]
                if plain:
                    turn.embedding = StoredVector(vectors[plain])
                if context:
                    turn.context_embedding = StoredVector(context_vectors[context])
            Turn.objects.bulk_update(batch, ["embedding", "context_embedding"])
        done += len(batch)
    return done


def turns_pending_count() -> int:
    return Turn.objects.filter(_PLAIN_PENDING | _CONTEXT_PENDING).count()
