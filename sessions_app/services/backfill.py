"""Embedding turns that were stored while the model was unavailable, and the context
vectors of turns stored before they existed (services/turn_context.py)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery

from sessions_app import embeddings
from sessions_app.models import Turn
from sessions_app.services.turn_context import Said, context_text, said_of
from sessions_app.services.turns import CLIENT_EMBEDDING

logger = logging.getLogger(__name__)

_PENDING = Q(embedding__isnull=True) | (
    Q(context_embedding__isnull=True) & ~Q(model_id=CLIENT_EMBEDDING)
)


def _pending() -> QuerySet[Turn]:
    return Turn.objects.filter(_PENDING)


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
    before = Turn.objects.filter(session=OuterRef("session"), seq__lt=OuterRef("seq")).order_by(
        "-seq"
    )
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                _pending()
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("id")
                .only("id", "text", "metadata", "model_id", "embedding", "context_embedding")
                .annotate(
                    previous_text=Subquery(before.values("text")[:1]),
                    previous_metadata=Subquery(before.values("metadata")[:1]),
                )[:batch_size]
            )
            if not batch:
                break
            wanted: dict[int, tuple[str | None, str | None]] = {}
            for turn in batch:
                previous: Said | None = None
                if turn.previous_text is not None:
                    previous = said_of(turn.previous_text, turn.previous_metadata or {})
                wanted[turn.pk] = (
                    turn.text if turn.embedding is None else None,
                    context_text(turn=Said.of(turn), previous=previous)
                    if turn.context_embedding is None and turn.model_id != CLIENT_EMBEDDING
                    else None,
                )
            texts = sorted({text for pair in wanted.values() for text in pair if text})
            vectors = dict(zip(texts, embeddings.texts_embed(texts), strict=True))
            for turn in batch:
                plain, context = wanted[turn.pk]
                if plain:
                    turn.embedding = vectors[plain]
                if context:
                    turn.context_embedding = vectors[context]
            Turn.objects.bulk_update(batch, ["embedding", "context_embedding"])
        done += len(batch)
    if done:
        logger.info("embedded %d turns that were pending", done)
    return done


def turns_pending_count() -> int:
    return _pending().count()
