"""Dashboard figures against the scripted history with pinned times (see times_set)."""

import pytest
from django.test import Client

from sessions_app.services.dashboard import Count, Distribution, SpecialistRow, dashboard_figures
from tests.supervise_history import History, history_build, times_set


@pytest.fixture
def history(db: None) -> History:
    built = history_build()
    times_set(built)
    return built


def buckets(distribution: Distribution) -> dict[str, int]:
    return {b.label: b.count for b in distribution.buckets if b.count}


def test_waiting_escalations_and_their_age(history: History) -> None:
    figures = dashboard_figures(project=history.project, window="24h", now=history.now)
    assert [(w.name, w.age_seconds, w.routed_to) for w in figures.waiting] == [
        ("conv-2", 90 * 60, "anyone")
    ]


def test_time_to_claim_distribution(history: History) -> None:
    figures = dashboard_figures(project=history.project, window="7d", now=history.now)
    assert figures.escalations == 3
    assert figures.unclaimed == 1
    claim = figures.time_to_claim
    assert buckets(claim) == {"1-5 min": 1, "15-60 min": 1}
    assert claim.count == 2
    assert claim.median_seconds == (180 + 2400) / 2
    assert claim.p90_seconds == 2400


def test_time_to_resolve_starts_at_the_escalation_after_the_hand_back(history: History) -> None:
    figures = dashboard_figures(project=history.project, window="7d", now=history.now)
    # v4 (t0+60m, after the hand-back at v3) -> v5 resolved at t0+110m.
    assert figures.time_to_resolve.count == 1
    assert figures.time_to_resolve.median_seconds == 50 * 60
    assert buckets(figures.time_to_resolve) == {"15-60 min": 1}


def test_handoffs_by_channel_pair(history: History) -> None:
    week = dashboard_figures(project=history.project, window="7d", now=history.now)
    assert sorted((c.label, c.count) for c in week.channel_pairs) == [
        ("chat → email", 1),
        ("chat → pending", 1),
        ("console → chat", 1),
        ("sms → pending", 1),
        ("voice → chat", 1),
    ]
    day = dashboard_figures(project=history.project, window="24h", now=history.now)
    # The voice -> chat handoff was three days ago.
    assert "voice → chat" not in {c.label for c in day.channel_pairs}
    assert len(day.channel_pairs) == 4


def test_hand_backs_to_bots(history: History) -> None:
    figures = dashboard_figures(project=history.project, window="24h", now=history.now)
    assert figures.hand_backs == 1
    assert figures.hand_backs_by_bot == [Count("chat-bot", 1)]


def test_escalations_per_specialist(history: History) -> None:
    figures = dashboard_figures(project=history.project, window="30d", now=history.now)
    assert figures.specialists == [
        SpecialistRow("ana", claims=1, median_claim_seconds=180, resolutions=0, hand_backs=1),
        SpecialistRow("ben", claims=1, median_claim_seconds=2400, resolutions=1, hand_backs=0),
    ]


def test_an_unknown_window_falls_back_to_seven_days(history: History) -> None:
    assert dashboard_figures(project=history.project, window="1y").window == "7d"


def test_the_page_shows_the_figures_as_charts_and_tables(history: History) -> None:
    client = Client()
    client.force_login(history.users["sam"])
    response = client.get(f"/supervise/p/{history.project.public_id}/dashboard/?window=30d")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('<svg class="bar-chart"') == 5
    assert 'data-figure="escalations">3<' in body
    assert 'data-figure="waiting">1<' in body
    assert "<td>chat → email</td><td>1</td>" in body
    assert "<td>ana</td><td>1</td><td>3 min</td>" in body


def test_an_unknown_window_is_named_in_a_422(history: History) -> None:
    client = Client()
    client.force_login(history.users["sam"])
    for window in ("zzz", "\x00"):
        response = client.get(
            f"/supervise/p/{history.project.public_id}/dashboard/", {"window": window}
        )
        assert response.status_code == 422
        assert "Window: choose one of 24h, 7d, 30d; showing last 7 days" in (
            response.content.decode()
        )
