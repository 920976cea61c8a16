"""Who is acting: a bot through a project key, or a user in the console."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from sessions_app.models import ApiKey


@dataclass(frozen=True)
class Actor:
    label: str
    api_key: ApiKey | None = None
    user: User | None = None

    @classmethod
    def for_key(cls, api_key: ApiKey, *, agent: str = "") -> Actor:
        label = agent or f"key {api_key.prefix}"
        return cls(label=label, api_key=api_key)

    @classmethod
    def for_user(cls, user: User) -> Actor:
        return cls(label=user.get_username(), user=user)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(label=label)
