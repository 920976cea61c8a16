"""Path converters for the pages' project ids and session names.

A URL segment that could never name a project or session does not match, so it is
a 404 before any view runs; a NUL ("%00") would otherwise reach PostgreSQL, which
refuses it in text with an error (a 500).
"""

from __future__ import annotations

from django.urls import register_converter

from sessions_app.validation import PROJECT_ID_PATTERN, SESSION_NAME_PATTERN


class _Matched:
    regex: str

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class ProjectIdConverter(_Matched):
    regex = PROJECT_ID_PATTERN.strip("^$")


class SessionNameConverter(_Matched):
    regex = SESSION_NAME_PATTERN.strip("^$")


register_converter(ProjectIdConverter, "project")
register_converter(SessionNameConverter, "session")
