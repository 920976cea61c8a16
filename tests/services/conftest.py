"""Fixtures shared by the service tests."""

import pytest

from sessions_app.actors import Actor
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert


@pytest.fixture
def stored(make_project):
    """store(name, [(role, text), ...]): a session of the project whose turns are t1, t2, …,
    stored through the service with the real model."""
    project, _ = make_project()
    actor = Actor.for_key(project.api_keys.get(), agent="voice-bot")

    def store(name, turns):
        session, _ = session_open(project=project, name=name, actor=actor)
        docs = [
            DocInput(id=f"t{index}", text=text, metadata={"role": role})
            for index, (role, text) in enumerate(turns, 1)
        ]
        turns_upsert(session=session, docs=docs, actor=actor)
        return session

    return store
