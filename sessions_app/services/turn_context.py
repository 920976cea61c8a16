"""The context embedding: each turn encoded with the turn before it and both speakers.

Short turns ("It ends in 4417.", "Yes, go ahead.") mean nothing alone; the
turn they answer carries the meaning. So beside its plain embedding each turn
stores the embedding of its context text (`context_text`): its own text with
its speaker first, then the turn before it in the thread. Search blends the
two (services/search.py, `Ranking.context_weight`).

A turn's context vector depends on its own text and role and on its
predecessor's. It is computed with the plain one when the turn is stored, in
the same encode batch, and never on resume. When an edit changes a turn's text
or role, or a delete removes it, the turn after it has a new context and its
vector is recomputed in the same call. Private notes (Turn.internal) are
nobody's predecessor and have none themselves: a bot's search must not rank
customer-facing turns by what a note says. Turns with client-supplied embeddings
have none (the client's model is not ours); while the model is unavailable it
is pending (NULL) and the backfill (services/backfill.py) computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery

from sessions_app.models import Session, Turn

# The predecessor is cut so that the turn itself (first) always fits the model's window.
PREVIOUS_CHARS = 300
# What context texts and their bookkeeping read of a neighbouring turn. Not its vectors:
# each is sent as text and parsed into 384 floats, about 0.3 ms a vector, on every add.
NEIGHBOUR_FIELDS = ("session_id", "doc_id", "seq", "text", "metadata", "model_id", "internal")


@dataclass(frozen=True)
class Said:
    """What a context text needs of a turn: who spoke and what they said."""

    role: str
    text: str

    @classmethod
    def of(cls, turn: Turn) -> Said:
        return cls(role=_role(turn.metadata), text=turn.text)


def _role(metadata: dict[str, Any]) -> str:
    role = metadata.get("role")
    return role.strip().capitalize() if isinstance(role, str) and role.strip() else "Someone"


def said_of(text: str, metadata: dict[str, Any]) -> Said:
    return Said(role=_role(metadata), text=text)


def context_text(*, turn: Said, previous: Said | None) -> str:
    """The text whose embedding is the turn's context vector (what `make eval` chose)."""
    own = f"{turn.role}: {turn.text}"
    if previous is None:
        return own
    return f"{own}\n(in reply to {previous.role}: {previous.text[:PREVIOUS_CHARS]})"


def neighbours_read(
    *, session: Session, seqs: list[int]
) -> dict[int, tuple[Turn | None, Turn | None]]:
    """For each sequence number: the turns just before and just after it in the thread."""
    if not seqs:
        return {}
    # Private notes are no turn's context: bots' search must not rank by them.
    same_session = Turn.objects.filter(session=session, internal=False)
    marked = list(
        same_session.filter(seq__in=seqs)
        .annotate(
            previous_pk=Subquery(
                same_session.filter(seq__lt=OuterRef("seq")).order_by("-seq").values("pk")[:1]
            ),
            next_pk=Subquery(
                same_session.filter(seq__gt=OuterRef("seq")).order_by("seq").values("pk")[:1]
            ),
        )
        .values_list("seq", "previous_pk", "next_pk")
    )
    wanted = {pk for _, prev, nxt in marked for pk in (prev, nxt) if pk is not None}
    turns = {t.pk: t for t in same_session.filter(pk__in=wanted).only(*NEIGHBOUR_FIELDS)}
    return {
        seq: (turns.get(prev) if prev else None, turns.get(nxt) if nxt else None)
        for seq, prev, nxt in marked
    }


def previous_of_gaps(*, session: Session, seqs: list[int]) -> dict[int, tuple[Turn | None, Turn]]:
    """After a delete: for each deleted sequence number, the first customer-facing turn
    left after it and the last one before that (its new predecessor)."""
    result: dict[int, tuple[Turn | None, Turn]] = {}
    same_session = Turn.objects.filter(session=session, internal=False).only(*NEIGHBOUR_FIELDS)
    for seq in seqs:
        following = same_session.filter(seq__gt=seq).order_by("seq").first()
        if following is None:
            continue
        previous = same_session.filter(seq__lt=following.seq).order_by("-seq").first()
        result[seq] = (previous, following)
    return result
