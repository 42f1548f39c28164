"""Region health by quorum of fresh vantage points, and the onset of a failure streak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from switchyard.domain.health import (
    READINESS,
    Health,
    HealthRule,
    Observation,
    assess,
    failure_onset,
    quorum_size,
    vantage_reports,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = HealthRule(failure_threshold=3, quorum_size=2, freshness=timedelta(seconds=3))


def rounds(
    vantage: str, oks: list[bool], *, region: str = "region-a", start: int = 0
) -> list[Observation]:
    """One HTTP observation per round, a second apart, oldest first."""
    return [
        Observation(
            vantage,
            region,
            "http",
            ok,
            "ok" if ok else "timeout",
            "",
            T0 + timedelta(seconds=start + i),
        )
        for i, ok in enumerate(oks)
    ]


def health(observations: list[Observation], now_offset: float) -> Health:
    now = T0 + timedelta(seconds=now_offset)
    return assess("region-a", vantage_reports(observations), RULE, now).status


def test_quorum_sizes() -> None:
    assert [quorum_size(n, "majority") for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert quorum_size(3, "all") == 3


def test_unhealthy_needs_threshold_failures_at_a_quorum_of_vantages() -> None:
    obs = rounds("a", [True, False, False, False]) + rounds("w", [True, False, False, False])
    obs += rounds("b", [True, True, True, True])
    assert health(obs, 3) is Health.UNHEALTHY


def test_one_vantage_alone_never_suffices() -> None:
    obs = rounds("a", [False] * 10) + rounds("b", [True] * 10) + rounds("w", [True] * 10)
    assert health(obs, 9) is Health.SUSPECT


def test_below_threshold_is_suspect() -> None:
    obs = rounds("a", [True, True, False, False]) + rounds("w", [True, True, False, False])
    assert health(obs, 3) is Health.SUSPECT


def test_a_good_round_resets_the_streak() -> None:
    obs = rounds("a", [False, False, True, False]) + rounds("w", [False, False, True, False])
    assert health(obs, 3) is Health.SUSPECT


def test_one_failed_probe_fails_the_round() -> None:
    obs = rounds("a", [False, False, False]) + rounds("w", [False, False, False])
    obs += [
        Observation("a", "region-a", "tcp", True, "ok", "", T0 + timedelta(seconds=i))
        for i in range(3)
    ]
    assert health(obs, 2) is Health.UNHEALTHY


def test_readiness_is_not_health() -> None:
    obs = rounds("a", [True] * 3) + rounds("w", [True] * 3)
    obs += [
        Observation("a", "region-a", READINESS, False, "not_ready", "", T0 + timedelta(seconds=i))
        for i in range(3)
    ]
    assert health(obs, 2) is Health.HEALTHY


def test_stale_vantages_make_health_unknown() -> None:
    obs = rounds("a", [False] * 4) + rounds("w", [False] * 4)
    assert health(obs, 3) is Health.UNHEALTHY
    assert health(obs, 30) is Health.UNKNOWN  # nobody fresh: a blind control plane does nothing


def test_failure_onset_is_the_earliest_streak_start() -> None:
    obs = rounds("a", [True, True, False, False, False]) + rounds(
        "w", [True, False, False, False, False]
    )
    assert failure_onset(obs, "region-a", T0 + timedelta(seconds=4)) == T0 + timedelta(seconds=1)
    assert failure_onset(rounds("a", [True, True]), "region-a", T0 + timedelta(seconds=4)) is None
