"""The demo `make run` seeds: generated passwords kept private, nothing published, idempotent."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from sessions_app.services.demo import LEGACY_DEMO_PASSWORD, demo_logins_read

DEMO_USERNAMES = {"ana", "ben", "sam", "admin"}


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_seed_generates_passwords_that_sign_in_and_prints_them(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    out = run("seed_demo")
    logins = demo_logins_read(data_dir=tmp_path)
    assert set(logins) == DEMO_USERNAMES
    assert len(set(logins.values())) == len(logins)
    assert all(len(password) >= 16 for password in logins.values())
    for username, password in logins.items():
        assert password in out
        assert User.objects.get(username=username).check_password(password)
    assert LEGACY_DEMO_PASSWORD not in out
    assert User.objects.get(username="admin").is_superuser


def test_the_passwords_and_the_key_are_private_and_kept_by_a_second_seed(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    run("seed_demo")
    assert mode(tmp_path / "demo-logins.json") == 0o600
    assert mode(tmp_path / "demo-key.json") == 0o600
    logins = demo_logins_read(data_dir=tmp_path)
    hashes = dict(User.objects.values_list("username", "password"))
    # A key file an older version left readable by everyone is narrowed at the next seed.
    (tmp_path / "demo-key.json").chmod(0o644)
    again = run("seed_demo")
    assert mode(tmp_path / "demo-key.json") == 0o600
    assert not list(tmp_path.glob("*.partial"))
    # Seeding again changes no password and prints the same ones.
    assert demo_logins_read(data_dir=tmp_path) == logins
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert all(password in again for password in logins.values())


def test_an_account_still_on_the_published_password_gets_a_generated_one(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    User.objects.create_superuser("admin", password=LEGACY_DEMO_PASSWORD)
    User.objects.create_user("ben", password="ben chose this one")
    out = run("seed_demo")
    logins = demo_logins_read(data_dir=tmp_path)
    admin = User.objects.get(username="admin")
    assert not admin.check_password(LEGACY_DEMO_PASSWORD)
    assert admin.check_password(logins["admin"])
    # An account someone made for themselves keeps its password, and none is printed for it.
    assert "ben" not in logins
    assert User.objects.get(username="ben").check_password("ben chose this one")
    assert "password unchanged" in out


def test_a_seed_interrupted_mid_conversation_is_finished_by_the_next(
    transactional_db: None, settings: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """Ctrl-C during the first `make run` left a conversation with no turns, for good: the
    next seed saw its name and skipped it."""
    from sessions_app.models import Session
    from sessions_app.services import demo

    settings.DATA_DIR = tmp_path
    pushes = 0
    real_push = demo.session_push

    def interrupted(**kwargs: Any) -> Any:
        nonlocal pushes
        pushes += 1
        if pushes == 2:
            raise KeyboardInterrupt
        return real_push(**kwargs)

    monkeypatch.setattr(demo, "session_push", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("seed_demo")
    assert pushes == 2
    monkeypatch.setattr(demo, "session_push", real_push)
    run("seed_demo")
    for session in Session.objects.all():
        assert session.doc_count > 0 and session.version > 0, session.name
    assert Session.objects.count() == len(demo.demo.DEMO_CONVERSATIONS)
