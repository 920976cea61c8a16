"""The stored turns a context vector reads (sessions_app/context_windows.py says what a
window is): the turn before a point of the thread and the turns after it, and the runs
of stored turns an edit or a delete must read again."""

from __future__ import annotations

from sessions_app.context_windows import Said, within_reach
from sessions_app.models import Session, Turn

# What context texts and their bookkeeping read of a neighbouring turn. Not its vectors:
# each is sent as text and parsed into 384 floats, about 0.3 ms a vector, on every add.
NEIGHBOUR_FIELDS = ("session_id", "doc_id", "seq", "text", "metadata", "model_id", "internal")
# Turns read after an edited or deleted one: more than FOLLOWERS_REACH's characters of
# the shortest turns ("Bot: " and one character).
FOLLOWERS_READ = 160


def thread_around(*, session: Session, seq: int) -> tuple[Turn | None, list[Turn]]:
    """The customer-facing turn before `seq`, and those after it (FOLLOWERS_READ at most)
    in order. Private notes are no turn's context: bots' search must not rank by them."""
    same_session = Turn.objects.filter(session=session, internal=False).only(*NEIGHBOUR_FIELDS)
    previous = same_session.filter(seq__lt=seq).order_by("-seq").first()
    followers = list(same_session.filter(seq__gt=seq).order_by("seq")[:FOLLOWERS_READ])
    return previous, followers


# A run of stored turns to read again, and the stored turn before it (None at the start).
Rerun = tuple[Turn | None, list[Turn]]


def reread_runs(*, session: Session, points: list[tuple[int, Turn | None]]) -> list[Rerun]:
    """The runs of stored turns whose context vectors change with the thread at `points`:
    (seq, the turn whose text or role changes there) or (seq, None) where a turn was
    deleted. Each run holds that turn, if any, then every later turn its windows may have
    reached (judged by the stored texts: what those windows were made of); runs that meet
    are one. The thread is read once for a point the read before does not cover, so a
    bulk edit or delete costs a few reads, not two a turn."""
    runs: list[Rerun] = []
    read: list[Turn] = []  # the turn before the last point read, if any, and those after it
    read_after = -1  # that point's seq; -1 before the first read
    read_to_end = False  # the read holds the session's last turn
    for seq, changed in sorted(points, key=lambda point: point[0]):
        covered = read_after != -1 and read_after < seq and (read_to_end or seq < read[-1].seq)
        previous = next((t for t in reversed(read) if t.seq < seq), None) if covered else None
        followers = [t for t in read if t.seq > seq] if covered else []
        reach = within_reach([Said.of(f) for f in followers])
        if not covered or (not read_to_end and reach == len(followers)):
            previous, followers = thread_around(session=session, seq=seq)
            # The changed turn is read too: it is the turn before the next.
            read = [t for t in (previous, changed) if t is not None] + followers
            read_after, read_to_end = seq, len(followers) < FOLLOWERS_READ
            reach = within_reach([Said.of(f) for f in followers])
        members = ([changed] if changed else []) + followers[:reach]
        if not members:
            continue
        if runs and previous is not None and runs[-1][1][-1].seq >= previous.seq:
            runs[-1][1].extend(t for t in members if t.seq > runs[-1][1][-1].seq)
        else:
            runs.append((previous, members))
    return runs
