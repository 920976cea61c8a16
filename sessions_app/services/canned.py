"""Canned responses: a project's reply snippets with placeholders filled from session metadata.

`{{ key }}` becomes the session's metadata value for `key` (e.g.
`{{customer_name}}`); a placeholder the session has no value for is left as
written, so the specialist sees what to fill in. The result is plain text:
templates escape it wherever it is shown, and the console puts it into the
reply box as a value, never as markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessions_app.models import CannedResponse, Session

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
# The picker lists this many at most: a project's snippets, not a library.
CANNED_LIMIT = 200


@dataclass(frozen=True)
class CannedFilled:
    shortcut: str
    title: str
    text: str


def canned_fill(*, text: str, metadata: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        found = metadata.get(match.group(1))
        return found if isinstance(found, str) and found else match.group(0)

    return PLACEHOLDER.sub(value, text)


def canned_for_session(*, session: Session) -> list[CannedFilled]:
    """The session's project's canned responses, filled for this session."""
    metadata = session.metadata if isinstance(session.metadata, dict) else {}
    responses = CannedResponse.objects.filter(project_id=session.project_id).order_by("shortcut")
    return [
        CannedFilled(
            shortcut=r.shortcut, title=r.title, text=canned_fill(text=r.text, metadata=metadata)
        )
        for r in responses[:CANNED_LIMIT]
    ]
