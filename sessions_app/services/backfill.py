"""Embedding turns that were stored while the model was unavailable."""

from __future__ import annotations

import logging

from django.db import transaction

from sessions_app import embeddings
from sessions_app.models import Turn

logger = logging.getLogger(__name__)


def turns_embed_pending(*, batch_size: int = 64) -> int:
    """Embed every pending turn, a batch at a time; how many were embedded.

    A batch's rows stay locked while it is encoded (SKIP LOCKED), so several
    server processes share the backlog without embedding a turn twice, and a
    writer changing one of those texts waits for the batch instead of having
    its new text overwritten by the old text's vector. Raises ModelUnavailable
    when the model fails; what was embedded until then is kept.
    """
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                Turn.objects.filter(embedding__isnull=True)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("id")
                .only("id", "text")[:batch_size]
            )
            if not batch:
                break
            vectors = embeddings.texts_embed([turn.text for turn in batch])
            for turn, vector in zip(batch, vectors, strict=True):
                turn.embedding = vector
            Turn.objects.bulk_update(batch, ["embedding"])
        done += len(batch)
    if done:
        logger.info("embedded %d turns that were pending", done)
    return done


def turns_pending_count() -> int:
    return Turn.objects.filter(embedding__isnull=True).count()
