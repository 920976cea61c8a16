"""The SQL dashboard gives the figures the earlier per-handoff Python computation gave."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from importlib import import_module
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import QuerySet

from sessions_app.models import DashboardDay, Handoff, Project, Session, SessionStatus, Turn
from sessions_app.services import dashboard, dashboard_days
from sessions_app.services.dashboard_days import EXACT_KEPT
from sessions_app.services.projects import project_create
from sessions_app.services.turns import CLIENT_EMBEDDING
from tests import dashboard_reference
from tests.servers import worker_process
from tests.supervise_history import history_build, times_set

KINDS = ["bot", "humans", "team", "user", "resolved"]
CHANNELS = ["voice", "chat", "email", "sms", "", None]


def _random_history(seed: int) -> tuple[Project, datetime]:
    """Sessions with random handoff sequences, claims, channels and times over 40 days."""
    rng = random.Random(seed)
    project, _ = project_create(name=f"random-{seed}")
    other, _ = project_create(name=f"other-{seed}")
    users = [User.objects.create(username=f"u{seed}-{n}") for n in range(4)]
    now = dashboard.timezone.now()
    for index in range(40):
        owner = project if index % 8 else other  # another project's handoffs stay out
        status = rng.choice([SessionStatus.WAITING, SessionStatus.BOT, SessionStatus.RESOLVED])
        session = Session.objects.create(
            project=owner,
            name=f"r{index}",
            model_id="m",
            status=status,
            waiting_since=now - timedelta(minutes=rng.randint(0, 5000))
            if status == SessionStatus.WAITING
            else None,
        )
        turn_count = rng.randint(0, 12)
        turns = []
        for seq in range(1, turn_count + 1):
            channel = rng.choice(CHANNELS)
            metadata = {} if channel is None else {"channel": channel}
            turns.append(
                Turn(session=session, doc_id=f"d{seq}", seq=seq, text="t", metadata=metadata)
            )
        Turn.objects.bulk_create(turns)
        at = now - timedelta(days=rng.uniform(0, 40))
        for version in range(1, rng.randint(1, 7)):
            at += timedelta(minutes=rng.uniform(0, 600))
            kind = rng.choice(KINDS)
            claimed = kind in ("humans", "team", "user") and rng.random() < 0.7
            Handoff.objects.create(
                session=session,
                project=owner,
                version=version,
                doc_count=0,
                last_seq=rng.randint(0, turn_count),
                from_channel=rng.choice(["", "", "chat", "voice"]),
                to_kind=kind,
                to_target=rng.choice(["", "bot-a", "bot-b"]) if kind == "bot" else "",
                by_user=rng.choice([None, *users]),
                claimed_at=at + timedelta(seconds=rng.uniform(0, 90_000)) if claimed else None,
                claimed_by=rng.choice(users) if claimed else None,
            )
        # auto_now_add: pin each handoff's time afterwards.
        for handoff in Handoff.objects.filter(session=session).order_by("version"):
            Handoff.objects.filter(pk=handoff.pk).update(
                created_at=at - timedelta(minutes=10 * (10 - handoff.version))
            )
    # Rows made here bypass the services that keep each handoff's channels and episode
    # start: fill them as migrations 0013 and 0017 do for handoffs recorded before them.
    migration = import_module("sessions_app.migrations.0013_handoff_channels")
    episodes = import_module("sessions_app.migrations.0017_handoff_episode_started_at")
    with connection.cursor() as cursor:
        cursor.execute(migration.HANDOFF_CHANNELS_BACKFILL)
        cursor.execute(episodes.HANDOFF_EPISODES_FILL)
    return project, now


def _plain(counts: list[Any]) -> list[tuple[str, int]]:
    return [(c.label, c.count) for c in counts]


def _same(project: Project, now: datetime) -> None:
    for window in dashboard.WINDOWS:
        new = dashboard.dashboard_figures(project=project, window=window, now=now)
        old = dashboard_reference.dashboard_figures(project=project, window=window, now=now)
        assert new.escalations == old.escalations, window
        assert new.unclaimed == old.unclaimed, window
        for name in ("time_to_claim", "time_to_resolve"):
            a, b = getattr(new, name), getattr(old, name)
            assert (_plain(a.buckets), a.count) == (_plain(b.buckets), b.count), (window, name)
            assert a.median_seconds == pytest.approx(b.median_seconds), (window, name)
            assert a.p90_seconds == pytest.approx(b.p90_seconds), (window, name)
        assert _plain(new.channel_pairs) == _plain(old.channel_pairs), window
        assert new.hand_backs == old.hand_backs, window
        assert sorted(_plain(new.hand_backs_by_bot)) == sorted(_plain(old.hand_backs_by_bot))
        assert [(r.username, r.claims, r.resolutions, r.hand_backs) for r in new.specialists] == [
            (r.username, r.claims, r.resolutions, r.hand_backs) for r in old.specialists
        ], window
        assert [r.median_claim_seconds for r in new.specialists] == pytest.approx(
            [r.median_claim_seconds for r in old.specialists]
        )
        assert new.waiting_count == len(old.waiting)
        assert [astuple(w) for w in new.waiting] == [
            astuple(w) for w in old.waiting[: dashboard.WAITING_SHOWN]
        ]


def test_the_scripted_history_gives_the_same_figures(db: None) -> None:
    history = history_build()
    times_set(history)
    _same(history.project, history.now)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_histories_give_the_same_figures(db: None, seed: int) -> None:
    project, now = _random_history(seed)
    _same(project, now)
    month = dashboard.dashboard_figures(project=project, window="30d", now=now)
    assert month.escalations and month.time_to_claim.count and month.time_to_resolve.count
    assert month.channel_pairs and month.specialists


def test_the_waiting_list_shows_the_oldest_and_counts_all(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "WAITING_SHOWN", 3)
    project, now = _random_history(4)
    figures = dashboard.dashboard_figures(project=project, window="7d", now=now)
    waiting = Session.objects.filter(project=project, status=SessionStatus.WAITING)
    assert figures.waiting_count == waiting.count() > 3
    oldest = list(waiting.order_by("waiting_since", "id").values_list("name", flat=True)[:3])
    assert [w.name for w in figures.waiting] == oldest


def test_the_migration_gives_each_recorded_handoff_its_sessions_project(db: None) -> None:
    project, now = _random_history(5)
    expected = dict(Handoff.objects.values_list("pk", "session__project_id"))
    assert set(expected.values()) == {project.pk, Project.objects.get(name="other-5").pk}
    with connection.cursor() as cursor:
        # Handoffs as recorded before migration 0015: no project (undone with the test's
        # transaction; the pending foreign-key checks fire first so the table can change).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE sessions_app_handoff ALTER COLUMN project_id DROP NOT NULL")
        cursor.execute("UPDATE sessions_app_handoff SET project_id = NULL")
        cursor.execute(
            import_module("sessions_app.migrations.0015_handoff_project").HANDOFF_PROJECT_FILL
        )
    assert dict(Handoff.objects.values_list("pk", "project_id")) == expected
    _same(project, now)


def test_a_recorded_handoff_carries_its_sessions_project(db: None) -> None:
    history = history_build()
    handoffs = Handoff.objects.filter(session__project=history.project)
    assert handoffs.exists()
    assert set(handoffs.values_list("project_id", flat=True)) == {history.project.pk}


def _episode_starts() -> dict[int, Any]:
    return dict(Handoff.objects.values_list("pk", "episode_started_at"))


def test_recorded_handoffs_carry_the_episode_start_the_migration_computes(db: None) -> None:
    """The services keep each handoff's episode start as it is recorded; the migration's
    fill, run over the same handoffs, finds the same, and the dashboard agrees with the
    per-handoff computation on them."""
    history = history_build()
    recorded = _episode_starts()
    assert any(recorded.values()) and not all(recorded.values())
    with connection.cursor() as cursor:
        cursor.execute("UPDATE sessions_app_handoff SET episode_started_at = NULL")
        cursor.execute(
            import_module(
                "sessions_app.migrations.0017_handoff_episode_started_at"
            ).HANDOFF_EPISODES_FILL
        )
    assert _episode_starts() == recorded
    _same(history.project, dashboard.timezone.now())


def test_an_escalation_after_a_resolution_starts_a_new_episode(db: None) -> None:
    history = history_build()
    handoffs = list(Handoff.objects.filter(session=history.conv1).order_by("version"))
    by_version = {h.version: h for h in handoffs}
    for handoff in handoffs:
        previous = by_version.get(handoff.version - 1)
        if handoff.to_kind in dashboard.ESCALATION_KINDS:
            expected = (
                previous.episode_started_at
                if previous and previous.to_kind in dashboard.ESCALATION_KINDS
                else handoff.created_at
            )
        elif handoff.to_kind == "resolved" and previous:
            expected = (
                previous.episode_started_at
                if previous.to_kind in dashboard.ESCALATION_KINDS
                else None
            )
        else:
            expected = None
        assert handoff.episode_started_at == expected, handoff.version


def _stored_days(project: Project) -> set[date]:
    return set(DashboardDay.objects.filter(project=project).values_list("day", flat=True))


def _day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _made_on_one_of(days: set[date], handoffs: QuerySet[Handoff]) -> Handoff:
    """The first of these handoffs made on one of these UTC days (whatever TIME_ZONE)."""
    found = next((h for h in handoffs.order_by("pk") if _day_of(h.created_at) in days), None)
    assert found is not None
    return found


def test_a_window_stores_its_whole_past_days(db: None) -> None:
    """Whole UTC days of the window up to yesterday are stored, with or without
    handoffs; the window's first part-day and today are not."""
    project, now = _random_history(6)
    other = Project.objects.get(name="other-6")
    first = dashboard.dashboard_figures(project=project, window="30d", now=now)
    start = _day_of(now - timedelta(days=30)) + timedelta(days=1)
    last = _day_of(dashboard.timezone.now()) - timedelta(days=1)
    assert _stored_days(project) == {
        start + timedelta(days=n) for n in range((last - start).days + 1)
    }
    assert not _stored_days(other)
    assert dashboard.dashboard_figures(project=project, window="30d", now=now) == first
    # A row in another stored form (an earlier release's) is computed again.
    DashboardDay.objects.filter(project=project, day=start).update(figures={"format": 0})
    assert dashboard.dashboard_figures(project=project, window="30d", now=now) == first
    assert DashboardDay.objects.get(project=project, day=start).figures["format"] == 1
    _same(project, now)


def test_a_change_to_a_stored_days_handoffs_drops_the_day(db: None) -> None:
    """Whatever writes a handoff (here plain SQL updates and a cascade), the days it was
    made and claimed on are computed again; the figures follow the change."""
    project, now = _random_history(7)
    dashboard.dashboard_figures(project=project, window="30d", now=now)
    stored = _stored_days(project)
    old = _made_on_one_of(
        stored, Handoff.objects.filter(project=project, to_kind="humans", claimed_at=None)
    )
    made_on = _day_of(old.created_at)
    # Claimed today: the day it was made on changes (its time to claim), today is not stored.
    Handoff.objects.filter(pk=old.pk).update(
        claimed_at=now, claimed_by=User.objects.filter(username__startswith="u7-").first()
    )
    assert _stored_days(project) == stored - {made_on}
    _same(project, now)
    assert _stored_days(project) == stored

    handoff = _made_on_one_of(
        stored - {made_on}, Handoff.objects.filter(project=project).exclude(to_kind="resolved")
    )
    Handoff.objects.filter(pk=handoff.pk).update(from_channel="fax")
    assert _day_of(handoff.created_at) not in _stored_days(project)
    _same(project, now)

    session = Session.objects.get(pk=old.session_id)
    days = {
        _day_of(at)
        for made, claimed in session.handoffs.values_list("created_at", "claimed_at")
        for at in (made, claimed)
        if at is not None
    }
    session.delete()
    assert not days & _stored_days(project)
    _same(project, now)


def test_the_workers_pass_stores_the_days_dashboards_in_use_lack(
    db: None, django_assert_max_num_queries: Any
) -> None:
    """The worker's pass stores the past days of projects with handoffs in the window, so
    their dashboards' first view, and a view after a change dropped a day, read stored
    days (with the same figures); a project without handoffs is left alone, and days
    before the longest window are deleted."""
    project, now = _random_history(9)
    other = Project.objects.get(name="other-9")  # its dashboard never viewed
    quiet, _ = project_create(name="quiet-9")
    figures = dashboard.dashboard_figures(project=project, window="30d", now=now)
    stored = _stored_days(project)
    assert len(stored) == 29 and not _stored_days(other)
    old = DashboardDay.objects.create(
        project=project, day=min(stored) - timedelta(days=2), figures={"format": 1}
    )
    dropped = _made_on_one_of(
        stored, Handoff.objects.filter(project=project).exclude(to_kind="resolved")
    )
    Handoff.objects.filter(pk=dropped.pk).update(from_channel="fax")
    assert _day_of(dropped.created_at) not in _stored_days(project)

    done = dashboard.dashboard_days_refresh()
    assert (done.projects, done.stored, done.deleted) == (2, 1 + 29, 1)
    assert _stored_days(project) == stored == _stored_days(other)
    assert not DashboardDay.objects.filter(pk=old.pk).exists()
    assert not _stored_days(quiet)
    # Views now read every past day: no handoff query over them.
    with django_assert_max_num_queries(6):
        assert dashboard.dashboard_figures(project=project, window="30d", now=now) != figures
    with django_assert_max_num_queries(6):
        dashboard.dashboard_figures(project=other, window="30d", now=now)
    _same(project, now)
    _same(other, now)
    # Nothing missing: the pass only looks.
    assert dashboard.dashboard_days_refresh() == dashboard_days.DaysRefreshed(0, 0, 0)
    # A stop asked for before a project is reached leaves it for the next pass.
    DashboardDay.objects.filter(project=project, day=min(stored)).delete()
    assert dashboard.dashboard_days_refresh(should_stop=lambda: True).stored == 0
    assert dashboard.dashboard_days_refresh().stored == 1


def test_one_pass_runs_at_a_time_across_workers(db: None) -> None:
    """While another worker's pass holds the refresh lock, a pass does nothing."""
    project, _ = _random_history(11)
    assert not _stored_days(project)
    with psycopg.connect(**connection.get_connection_params()) as other:  # type: ignore[arg-type]
        other.execute("SELECT pg_advisory_lock(%s)", [dashboard_days._REFRESH_LOCK])
        assert dashboard.dashboard_days_refresh() == dashboard_days.DaysRefreshed(0, 0, 0)
        assert not _stored_days(project)
        other.execute("SELECT pg_advisory_unlock(%s)", [dashboard_days._REFRESH_LOCK])
    assert dashboard.dashboard_days_refresh().stored >= 29
    assert len(_stored_days(project)) == 29
    # The pass let the lock go: another connection takes it at once.
    with psycopg.connect(**connection.get_connection_params()) as other:  # type: ignore[arg-type]
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", [dashboard_days._REFRESH_LOCK])
        assert taken.fetchone() == (True,)


def test_the_delivery_worker_stores_dropped_days(transactional_db: None) -> None:
    """`manage.py deliver_webhooks` (which `make run` starts) runs the pass as it listens."""
    project, now = _random_history(10)
    dashboard.dashboard_figures(project=project, window="30d", now=now)
    stored = _stored_days(project)
    DashboardDay.objects.filter(project=project, day__in=sorted(stored)[:3]).delete()
    with worker_process(env={"MOSS_DASHBOARD_REFRESH_SECONDS": "0.2"}):
        deadline = time.monotonic() + 20
        while _stored_days(project) != stored and time.monotonic() < deadline:
            time.sleep(0.1)
    assert _stored_days(project) == stored
    _same(project, now)


def test_busy_days_keep_durations_in_buckets_within_one_percent(db: None) -> None:
    """A day with more than EXACT_KEPT durations keeps bucket counts: medians and p90
    within 1% of the exact ones, the chart's counts and everything else exact."""
    project, _ = project_create(name="busy")
    users = [User.objects.create(username=f"busy-{n}") for n in range(2)]
    session = Session.objects.create(project=project, name="busy", model_id="m")
    rng = random.Random(8)
    seconds = [math.exp(rng.uniform(0, math.log(7200))) for _ in range(3 * EXACT_KEPT)]
    Handoff.objects.bulk_create(
        Handoff(
            session=session,
            project=project,
            version=version,
            doc_count=0,
            last_seq=0,
            to_kind="humans",
            claimed_by=users[version % 2],
        )
        for version in range(1, len(seconds) + 1)
    )
    now = dashboard.timezone.now()
    day = _day_of(now) - timedelta(days=5)
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sessions_app_handoff SET created_at = %s + version * interval '1 minute',"
            " claimed_at = %s + version * interval '1 minute'"
            " + make_interval(secs => (%s::float8[])[version]) WHERE session_id = %s",
            [midnight, midnight, seconds, session.pk],
        )
    figures = dashboard.dashboard_figures(project=project, window="30d", now=now)
    stored = DashboardDay.objects.get(project=project, day=day).figures
    assert "counts" in stored["claim"] and "values" not in stored["claim"]
    exact = dashboard_reference.dashboard_figures(project=project, window="30d", now=now)
    claim, reference = figures.time_to_claim, exact.time_to_claim
    assert (_plain(claim.buckets), claim.count) == (_plain(reference.buckets), reference.count)
    assert claim.median_seconds == pytest.approx(reference.median_seconds, rel=0.01)
    assert claim.p90_seconds == pytest.approx(reference.p90_seconds, rel=0.01)
    assert claim.median_seconds != reference.median_seconds  # from the buckets, not exact
    assert [(r.username, r.claims) for r in figures.specialists] == [
        (r.username, r.claims) for r in exact.specialists
    ]
    for row, expected in zip(figures.specialists, exact.specialists, strict=True):
        assert row.median_claim_seconds == pytest.approx(expected.median_claim_seconds, rel=0.01)


@pytest.mark.parametrize("many", [False, True], ids=["one handoff", "every handoff"])
def test_a_view_stores_no_day_a_writer_is_changing(transactional_db: None, many: bool) -> None:
    """While a transaction that changed a past day's handoff is open, a view computes
    that day (without the uncommitted change) and does not store it: stored, it would
    outlive the change. Once the writer commits, the next view stores the day with it.
    A writer that touches handoffs of many days locks the whole project instead."""
    with transaction.atomic():
        project, now = _random_history(9)
        # Committed turns without vectors would be pending: the test servers' embedding
        # workers would backfill them, racing this test's teardown. Mark them as given.
        Turn.objects.filter(session__project__name__endswith="-9").update(
            embedding=[1.0] + [0.0] * 383, model_id=CLIENT_EMBEDDING
        )
    assert not Turn.objects.filter(embedding__isnull=True).exists()
    today = _day_of(dashboard.timezone.now())
    handoff = _made_on_one_of(
        {today - timedelta(days=n) for n in range(3, 28)},
        Handoff.objects.filter(project=project).exclude(to_kind="resolved"),
    )
    day = _day_of(handoff.created_at)
    changed, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                if many:  # one statement per handoff, as a data migration's loop would
                    for pk in Handoff.objects.filter(project=project).values_list("pk", flat=True):
                        Handoff.objects.filter(pk=pk).update(reason="reviewed")
                Handoff.objects.filter(pk=handoff.pk).update(from_channel="fax")
                changed.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert changed.wait(30)
        during = dashboard.dashboard_figures(project=project, window="30d", now=now)
        if many:
            assert not _stored_days(project)
        else:
            assert day not in _stored_days(project)
            assert day - timedelta(days=1) in _stored_days(project)
        assert not any(c.label.startswith("fax →") for c in during.channel_pairs)
    finally:
        release.set()
        thread.join(30)
    after = dashboard.dashboard_figures(project=project, window="30d", now=now)
    assert day in _stored_days(project)
    assert any(c.label.startswith("fax →") for c in after.channel_pairs)
    _same(project, now)


def _advisory_locks() -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cursor.fetchall()


def test_a_transaction_over_many_days_holds_a_bounded_number_of_locks(db: None) -> None:
    """Past its first 64 handoff dates, a transaction locks the project, not each day:
    a data migration over years of handoffs does not run out of lock slots."""
    project, _ = project_create(name="years")
    session = Session.objects.create(project=project, name="years", model_id="m")
    Handoff.objects.bulk_create(
        Handoff(session=session, project=project, version=n, doc_count=0, last_seq=0)
        for n in range(1, 501)
    )
    with connection.cursor() as cursor:  # one statement, a handoff a day over 500 days
        cursor.execute(
            "UPDATE sessions_app_handoff SET created_at = now() - version * interval '1 day'"
            " WHERE session_id = %s",
            [session.pk],
        )
    locks = _advisory_locks()
    assert len(locks) <= 64 + 1
    assert (project.pk, 2**32 - 1) in locks  # the project's key: -1 as an oid
