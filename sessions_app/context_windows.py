"""The context embedding: each turn as the model reads it after the turns before it.

Short turns ("It ends in 4417.", "Yes, go ahead.") mean nothing alone; the
turns they answer carry the meaning. So beside its plain embedding each turn
stores a context vector: the turns of a window are read in one sequence, in
thread order, each as "Role: text", after the turn before the window (cut at
PREVIOUS_CHARS); each turn's tokens attend to the sequence's start, to
themselves and to the turns before them, never to later ones; a turn's vector
is the mean of its own tokens' final states ("late chunking",
onnx_encoder.ContextEncoder). Search blends the two vectors
(services/search.py, `Ranking.context_weight`).

A window is what `context_windows` makes of a run of turns: the turns of one
add call after the session's last turn, as many as fit WINDOW_CHARS with the
turn before them, then again from the turn before the next one. So a turn reads
at least the turn before it, and as far back as its window reaches; every
token of a call is encoded about once (the context texts of before, a turn with
its predecessor, encoded each token about 2.2 times). `make eval` measured the
choice (README, "Search quality" and "Late chunking").

A turn's context vector is computed with the plain one when the turn is stored,
in the same call, and never on resume. When an edit changes a turn's text or
role, or a delete removes it, every later turn its window may have reached
(`FOLLOWERS_REACH`) is read again from the turn before it, in the same call
(services/turn_context.py reads those turns).
Private notes (Turn.internal) are in no window and have a window of their own,
alone: a bot's search must not rank customer-facing turns by what a note says.
Turns with client-supplied embeddings have no context vector (the client's
model is not ours) but are read as context for the turns after them; while the
model is unavailable it is pending (NULL) and the backfill
(services/backfill.py) computes it from a window of the turn and its
predecessor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessions_app.models import Turn

# The turn before a window is cut, so that it leaves room for the window's own turns.
PREVIOUS_CHARS = 300
# A window's turns and the turn before it, in characters: about 128 tokens (3.7 characters
# a token on the eval set), the best of 96-192 tokens measured (README, "Late chunking"). A
# window holds one turn at least, however long.
WINDOW_CHARS = 480
# A turn more than this many characters after another (its own and those between) never
# has that one in its window: what an edit or a delete must read again.
FOLLOWERS_REACH = WINDOW_CHARS


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


@dataclass(frozen=True)
class ContextWindow:
    """What a turn's context vector reads: the turn before the window (or none), then the
    window's turns up to and including this one, its last."""

    previous: Said | None
    turns: tuple[Said, ...]


def _chars(said: Said) -> int:
    return len(said.role) + 2 + len(said.text)


def context_windows(*, previous: Said | None, turns: list[Said]) -> list[ContextWindow]:
    """The window of each turn of a run (consecutive turns of the thread, after
    `previous`): as many turns as fit WINDOW_CHARS with the turn before them, then again
    from the turn before the next one."""
    windows: list[ContextWindow] = []
    members: list[Said] = []
    used = 0
    for turn in turns:
        if members and used + _chars(turn) > WINDOW_CHARS:
            previous, members = members[-1], []
        if not members:
            used = (
                0
                if previous is None
                else len(previous.role) + 2 + min(len(previous.text), PREVIOUS_CHARS)
            )
        members.append(turn)
        used += _chars(turn)
        windows.append(ContextWindow(previous=previous, turns=tuple(members)))
    return windows


def within_reach(saids: list[Said]) -> int:
    """Of the turns after an edited or deleted one (in order), how many its windows may
    have reached: the first always, then while their characters fit FOLLOWERS_REACH."""
    count, used = 0, 0
    for said in saids:
        used += _chars(said)
        if count and used > FOLLOWERS_REACH:
            break
        count += 1
    return count
