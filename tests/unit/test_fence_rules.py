"""When an unplanned failover may promote (``domain/fence.py``), from when the isolation wait
counts (``last_sign_of_life``), the topology's policy value, the unconfirmed-fence counter, and
the drill report's ``fence_proof``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import yaml
from prometheus_client import CollectorRegistry

from switchyard.controller.view import loop_settings
from switchyard.devenv.layout import repo_root
from switchyard.domain.failover import Trigger
from switchyard.domain.fence import FenceProof, fence_verdict
from switchyard.domain.health import READINESS, Observation, last_sign_of_life
from switchyard.domain.report import drill_report
from switchyard.domain.saga import (
    FailoverRecord,
    FailoverState,
    Step,
    StepOutcome,
    StepRecord,
    StepStatus,
)
from switchyard.errors import ConfigError
from switchyard.observability.metrics import ControllerMetrics
from switchyard.topology import load_topology

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def verdict(
    *, db: bool = False, revoked: bool = False, alive: datetime | None = None
) -> tuple[FenceProof | None, str, datetime | None]:
    v = fence_verdict(
        source="region-a",
        database_fenced=db,
        leases_revoked=revoked,
        last_sign_of_life=alive,
        searched_since=NOW - HOUR,
        isolation_timeout=HOUR,
        now=NOW,
    )
    return v.proof, v.reason, v.promotable_at


def test_the_database_fence_is_the_strongest_proof() -> None:
    assert verdict(db=True, revoked=True, alive=NOW)[0] is FenceProof.DATABASE


def test_revoked_leases_prove_it_whenever_the_source_was_last_seen() -> None:
    assert verdict(revoked=True, alive=NOW)[0] is FenceProof.LEASES_REVOKED


def test_without_either_the_source_must_have_been_silent_for_the_isolation_timeout() -> None:
    proof, reason, promotable_at = verdict(alive=NOW - timedelta(minutes=20))
    assert proof is None
    assert promotable_at == NOW + timedelta(minutes=40)
    assert "not promoting" in reason
    assert "2400 s to go" in reason

    assert verdict(alive=NOW - HOUR)[0] is FenceProof.ISOLATION_TIMEOUT
    assert verdict(alive=NOW - HOUR + timedelta(seconds=1))[0] is None


def test_no_good_answer_in_the_whole_span_searched_is_silence_that_long() -> None:
    proof, reason, _ = verdict(alive=None)
    assert proof is FenceProof.ISOLATION_TIMEOUT
    assert "nothing of region-a answered since" in reason


def obs(vantage: str, region: str, ok: bool, seconds_ago: float, kind: str = "http") -> Observation:
    at = NOW - timedelta(seconds=seconds_ago)
    return Observation(vantage, region, kind, ok, "ok" if ok else "timeout", "", at)


def alive(observations: list[Observation], since: float = 60) -> datetime | None:
    span = {"since": NOW - timedelta(seconds=since), "until": NOW, "gap": timedelta(seconds=3)}
    return last_sign_of_life(observations, "region-a", **span)


def every_second(seconds: range, ok: bool = False) -> list[Observation]:
    return [obs("witness", "region-a", ok, s) for s in seconds]


def test_the_last_sign_of_life_is_the_newest_answer_from_any_vantage() -> None:
    observed = every_second(range(60, -1, -1))  # timed out every second: no answer
    assert alive(observed) is None
    answers = [
        obs("witness", "region-a", True, 30),
        obs("region-b", "region-a", True, 20, kind=READINESS),  # readiness counts too
        obs("witness", "region-b", True, 1),  # another region
    ]
    assert alive([*observed, *answers]) == NOW - timedelta(seconds=20)
    # A failure that something answered (503, wrong canary answer) is a sign of life too.
    refused = replace(obs("witness", "region-a", False, 3), code="connect_refused")
    status = replace(obs("witness", "region-a", False, 8, kind="canary"), code="not_cited")
    assert alive([*observed, *answers, refused, status]) == NOW - timedelta(seconds=8)


def test_a_span_nobody_observed_is_not_silence() -> None:
    # Observed and silent, except from 40 s to 25 s ago: nothing recorded (the store down).
    observed = every_second(range(60, 40, -1)) + every_second(range(25, -1, -1))
    assert alive(observed) == NOW - timedelta(seconds=25)
    # Observed only lately: before that, nothing says it was silent.
    assert alive(every_second(range(10, -1, -1))) == NOW - timedelta(seconds=10)
    # Not observed lately: it may be answering now.
    assert alive(every_second(range(60, 9, -1))) == NOW
    assert alive([]) == NOW


EXAMPLE = repo_root() / "config" / "topology.example.yaml"


def test_the_isolation_timeout_defaults_to_an_hour_and_reaches_the_loop() -> None:
    topology = load_topology(EXAMPLE)
    assert topology.failover.isolation_timeout_seconds == 3600
    assert loop_settings(topology).isolation_timeout_seconds == 3600


@pytest.mark.parametrize("value", [0, -5, 10, 15, 8 * 86400])
def test_an_isolation_timeout_shorter_than_a_lease_or_absurd_is_refused(
    tmp_path: Path, value: float
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["failover"]["isolation_timeout_seconds"] = value  # lease_ttl_seconds is 15
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    assert "isolation_timeout_seconds" in str(err.value)


def _record(fence: dict[str, object], state: FailoverState) -> FailoverRecord:
    steps = tuple(
        StepRecord(
            seq,
            name,
            StepStatus.SUCCEEDED,
            started_at=NOW,
            finished_at=NOW + timedelta(seconds=seq),
            attempts=1,
            detail=fence if name is Step.FENCE_SOURCE else None,
        )
        for seq, name in enumerate(
            (Step.CHECK_READINESS, Step.FENCE_SOURCE, Step.PROMOTE_TARGET, Step.VERIFY_PROBE)
        )
    )
    return FailoverRecord(
        uuid4(), "region-a", "region-b", Trigger.MANUAL, state, "drill", 2, "ops", NOW, steps
    )


def test_the_drill_report_says_which_proof_the_promotion_rested_on() -> None:
    fence = {"fence_proof": "isolation_timeout", "rpo_seconds": None, "rpo_from": "unknown"}
    report = drill_report(_record(fence, FailoverState.SUCCEEDED), None, None)
    assert report["fence_proof"] == "isolation_timeout"
    assert report["rpo_from"] == "unknown"


def test_an_unconfirmed_fence_counts_by_the_proof_it_went_on_with() -> None:
    metrics = ControllerMetrics.create(CollectorRegistry(), regions=["region-a", "region-b"])
    name = "switchyard_failover_fence_unconfirmed_total"

    def count(proof: str) -> float | None:
        labels = {"region": "region-a", "proof": proof}
        return metrics.registry.get_sample_value(name, labels)

    assert count("none") == 0  # present from the start, so the first increase is seen
    record = _record({}, FailoverState.RUNNING)
    held = StepOutcome(False, "held", "fence_unconfirmed", {"fence_confirmed": False})
    metrics.step_done(record, Step.FENCE_SOURCE, held, 0.01)
    metrics.step_done(record, Step.FENCE_SOURCE, held, 0.01)
    went_on = StepOutcome(
        True, "ok", detail={"fence_confirmed": False, "fence_proof": "isolation_timeout"}
    )
    metrics.step_done(record, Step.FENCE_SOURCE, went_on, 0.01)
    confirmed = StepOutcome(True, "ok", detail={"fence_confirmed": True, "fence_proof": "database"})
    metrics.step_done(record, Step.FENCE_SOURCE, confirmed, 0.01)
    assert (count("none"), count("isolation_timeout"), count("leases_revoked")) == (2, 1, 0)
