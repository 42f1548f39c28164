"""The whole controller loop on in-memory adapters with a fake clock: outage, flapping,
partition, crash mid-failover, the witness unreachable, intents and drills."""

from __future__ import annotations

import pytest

from scenario.world import ADDRESSES, World, decisions, topology
from switchyard.domain.failover import DrillKind, IntentRequest
from switchyard.domain.region import RegionRole
from switchyard.domain.saga import FailoverState, Step, StepStatus
from switchyard.errors import FencingError


@pytest.fixture
def world() -> World:
    return World(topology())


def test_steady_region_stays_put(world: World) -> None:
    reports = world.run(10)
    codes = decisions(reports)
    # The very first cycle has only the leader's own observations: too few to judge.
    assert codes[0] == "health_unknown"
    assert set(codes[1:]) == {"healthy"}
    assert world.roles() == {"region-a": ("primary", 1), "region-b": ("standby", 0)}
    assert sum(r.leader for r in reports) == 10  # exactly one leader per cycle


def test_outage_fails_over_after_threshold_and_quorum(world: World) -> None:
    world.run(3)
    world.kill("region-a")
    reports = world.run(6)
    codes = decisions(reports)
    assert "failover_started" in codes
    assert world.roles() == {"region-a": ("fenced", 2), "region-b": ("primary", 2)}
    assert world.answer() == (ADDRESSES["region-b"],)
    assert world.databases.states["region-b"].epoch == 2
    assert not world.credentials.is_live(world.runtime_lease)  # fencing revoked its leases
    [record] = [f for r in reports for f in r.finished]
    assert record.state is FailoverState.SUCCEEDED
    assert [s.name for s in record.steps if s.status is StepStatus.SUCCEEDED] == [
        Step.CHECK_READINESS,
        Step.FENCE_SOURCE,
        Step.PROMOTE_TARGET,
        Step.UPDATE_DNS,
        Step.VERIFY_DNS,
        Step.VERIFY_PROBE,
    ]
    fence = record.step(Step.FENCE_SOURCE)
    assert fence is not None
    assert fence.detail is not None
    assert fence.detail["database_fenced"] is False
    assert fence.detail["leases_revoked"] is True
    # The failure was seen from the 3rd failed round at two vantages: not earlier.
    started = codes.index("failover_started")
    assert codes[:started].count("suspect") >= 1


def test_flapping_never_fails_over(world: World) -> None:
    for i in range(40):
        if i % 3 == 2:
            world.down.discard("region-a")
        else:
            world.down.add("region-a")
        world.tick()
    assert world.roles()["region-a"] == ("primary", 1)
    assert world.answer() == (ADDRESSES["region-a"],)


def test_partition_of_one_vantage_is_no_quorum(world: World) -> None:
    world.unreachable["region-b"] = {"region-a"}
    reports = world.run(15)
    assert "failover_started" not in decisions(reports)
    assert world.roles()["region-a"] == ("primary", 1)
    world.unreachable["witness"] = {"region-a"}  # now a majority cannot reach it
    reports = world.run(6)
    assert "failover_started" in decisions(reports)
    assert world.roles()["region-b"] == ("primary", 2)


def test_unreachable_witness_store_means_nobody_acts(world: World) -> None:
    world.run(2)
    world.kill("region-a")
    world.store.fail = True
    reports = world.run(10)
    assert not any(r.leader for r in reports)
    assert all(r.error and "control store unreachable" in r.error for r in reports)
    world.store.fail = False
    assert world.roles()["region-a"] == ("primary", 1)
    assert world.answer() == (ADDRESSES["region-a"],)


def test_leader_crash_mid_failover_is_resumed_by_another_controller(world: World) -> None:
    world.run(2)
    world.kill("region-a")
    world.dns.set_reachable(False)  # the failover will stop at update_dns
    reports = world.run(6)
    running = world.store.running_failover()
    assert running is not None
    assert running.next_step() is not None
    assert running.next_step().name is Step.UPDATE_DNS  # type: ignore[union-attr]
    leader = next(r for r in reversed(reports) if r.leader)
    leader_vantage = world.store.loop_status().holder
    assert leader_vantage is not None
    assert leader.leader
    world.crashed.add(leader_vantage)
    world.dns.set_reachable(True)
    reports = world.run(15)  # the lease expires, another controller takes it and resumes
    assert world.store.loop_status().holder != leader_vantage
    assert world.roles()["region-b"] == ("primary", 2)
    assert world.answer() == (ADDRESSES["region-b"],)
    done = world.store.failover(running.id)
    assert done.state is FailoverState.SUCCEEDED
    dns_step = done.step(Step.UPDATE_DNS)
    assert dns_step is not None
    assert dns_step.attempts >= 2


def test_no_automatic_fail_back_and_cooldown(world: World) -> None:
    world.kill("region-a")
    world.run(8)
    assert world.roles()["region-b"] == ("primary", 2)
    world.down.discard("region-a")
    world.databases.down.discard("region-a")
    world.checks.broken.discard("region-a")
    world.kill("region-b")
    reports = world.run(10)
    assert "failover_started" not in decisions(reports)
    assert {"no_eligible_target", "cooldown"} & set(decisions(reports))
    assert world.roles()["region-a"][0] == "fenced"


def test_manual_failover_intent_and_rejections(world: World) -> None:
    world.run(2)
    submitted = world.store.submit_intent(
        IntentRequest("failover", "region-b", "maintenance of region-a", "ops")
    )
    world.run(2)
    record = world.store.failover(submitted.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    assert record.actor == "ops"
    assert world.roles() == {"region-a": ("fenced", 2), "region-b": ("primary", 2)}
    assert world.store.intent_status(submitted.failover_id)[0] == "succeeded"


def test_dry_run_changes_nothing(world: World) -> None:
    world.run(2)
    s = world.store.submit_intent(
        IntentRequest("failover", "region-b", "rehearse", "ops", dry_run=True)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    assert {st.status for st in record.steps[1:]} == {StepStatus.SKIPPED}
    assert world.roles() == {"region-a": ("primary", 1), "region-b": ("standby", 0)}
    assert world.answer() == (ADDRESSES["region-a"],)


def test_a_dry_run_does_not_delay_a_real_failover(world: World) -> None:
    """A rehearsal changed nothing, so it must not start the cooldown (seen in the demo:
    a dry run made the loop refuse to fail over a dead primary for 300 s)."""
    world.run(2)
    world.store.submit_intent(
        IntentRequest("failover", "region-b", "rehearse", "ops", dry_run=True)
    )
    world.run(2)
    world.kill("region-a")
    codes = decisions(world.run(6))
    assert "cooldown" not in codes
    assert "failover_started" in codes
    assert world.roles()["region-b"][0] == "primary"
    assert world.answer() == (ADDRESSES["region-b"],)


def test_a_rolled_back_switchover_does_not_delay_a_real_failover(world: World) -> None:
    world.run(2)
    world.databases.writes["region-a"] = {"s1/1": world.clock.now()}
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "switchover", "ops", drill_kind=DrillKind.PLANNED)
    )
    world.run(2)
    assert world.store.failover(s.failover_id).state is FailoverState.ABORTED
    world.databases.writes["region-a"] = {}
    world.kill("region-a")
    codes = decisions(world.run(6))
    assert "cooldown" not in codes
    assert world.roles()["region-b"][0] == "primary"


def test_unplanned_drill_reports_rto_and_rpo(world: World) -> None:
    world.run(2)
    now = world.clock.now()
    world.databases.writes["region-a"] = {"s1/1": now, "s1/2": now}
    world.databases.writes["region-b"] = {"s1/1": now}
    s = world.store.submit_intent(
        IntentRequest(
            "drill",
            "region-b",
            "game day",
            "ops",
            drill_kind=DrillKind.UNPLANNED,
            objectives={"rto_seconds": 60, "rpo_seconds": 0},
        )
    )
    world.run(2)
    assert s.drill_id is not None
    drill = world.store.drill(s.drill_id)
    assert drill.report is not None
    assert drill.report["rto_seconds"] is not None
    assert drill.report["unreplicated_writes"] == 1
    assert drill.status == "failed"  # RPO objective 0 missed: one write never reached region-b
    assert drill.report["objectives"]["rto_seconds"]["met"] is True  # type: ignore[index]


def test_planned_drill_that_cannot_catch_up_rolls_back(world: World) -> None:
    world.run(2)
    world.databases.writes["region-a"] = {"s1/1": world.clock.now()}
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "switchover", "ops", drill_kind=DrillKind.PLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.ABORTED
    # Fenced to standby at epoch 2, so restored at a fresh epoch: never two roles at one.
    assert world.roles() == {"region-a": ("primary", 3), "region-b": ("standby", 0)}
    assert [st.name for st in record.steps if st.status is StepStatus.FAILED] == [
        Step.WAIT_REPLICATION
    ]
    restore = record.step(Step.RESTORE_SOURCE)
    assert restore is not None
    assert restore.status is StepStatus.SUCCEEDED
    promote = record.step(Step.PROMOTE_TARGET)
    assert promote is not None
    assert promote.status is StepStatus.PENDING
    assert world.databases.states["region-a"].role.value == "primary"
    assert world.answer() == (ADDRESSES["region-a"],)


def test_planned_drill_caught_up_switches_over_cleanly(world: World) -> None:
    world.run(2)
    s = world.store.submit_intent(
        IntentRequest(
            "drill",
            "region-b",
            "switchover",
            "ops",
            drill_kind=DrillKind.PLANNED,
            objectives={"rpo_seconds": 0},
        )
    )
    world.run(2)
    assert world.store.failover(s.failover_id).state is FailoverState.SUCCEEDED
    assert world.roles() == {"region-a": ("standby", 2), "region-b": ("primary", 2)}
    assert s.drill_id is not None
    assert world.store.drill(s.drill_id).status == "passed"


def test_external_drill_measures_the_next_automatic_failover(world: World) -> None:
    world.run(3)
    s = world.store.submit_intent(
        IntentRequest(
            "drill",
            "region-b",
            "kill the runtime",
            "ops",
            drill_kind=DrillKind.UNPLANNED,
            fault="external",
            objectives={"rto_seconds": 30},
        )
    )
    world.run(2)
    world.kill("region-a")
    world.run(8)
    assert s.drill_id is not None
    drill = world.store.drill(s.drill_id)
    assert drill.failover_id is not None
    assert drill.report is not None
    assert 2.0 <= drill.report["rto_seconds"] <= 6.0  # type: ignore[operator]
    assert drill.report["detection_seconds"] >= 2.0  # type: ignore[operator]


def test_deposed_leader_cannot_act(world: World) -> None:
    world.run(1)
    stale = world.leases.current("controller")
    assert stale is not None
    world.clock.advance(60)  # the lease expires; another controller leads and acts
    world.crashed.add(stale.holder)
    world.run(1)
    assert world.store.loop_status().holder != stale.holder
    with pytest.raises(FencingError):
        world.leases.check(stale)
    with pytest.raises(FencingError):
        world.store.set_region(
            "region-b",
            role=RegionRole.PRIMARY,
            epoch=9,
            token=stale.fencing_token,
            actor=stale.holder,
            reason="deposed",
        )
    assert world.roles()["region-b"] == ("standby", 0)


# -- with CDC: lag gates and the planned switchover's wait by position ----------------------


def test_a_standby_with_a_replication_gap_is_not_failed_over_to() -> None:
    from dataclasses import replace

    from switchyard.adapters.replication_memory import caught_up

    world = World(topology(), cdc=True)
    assert world.replication is not None
    gap = {"reason": "sequence_jump", "after_seq": 4, "seen_seq": 7, "accepted": False}
    world.replication.lags[("region-a", "region-b")] = replace(
        caught_up("region-a", "region-b"), gap=gap
    )
    world.run(3)
    world.kill("region-a")
    codes = decisions(world.run(6))
    assert "failover_started" not in codes
    assert "lag_too_high" in codes
    assert world.roles()["region-a"] == ("primary", 1)
    # Re-synced: the gate opens and the loop fails over.
    del world.replication.lags[("region-a", "region-b")]
    assert "failover_started" in decisions(world.run(3))
    assert world.roles()["region-b"] == ("primary", 2)


def test_a_planned_switchover_waits_until_the_target_applied_up_to_the_fence() -> None:
    from dataclasses import replace

    from switchyard.adapters.replication_memory import caught_up

    world = World(topology(), cdc=True)
    assert world.replication is not None
    world.replication.positions["region-a"] = 5_000
    behind = replace(caught_up("region-a", "region-b"), applied_lsn=4_000)
    world.replication.lags[("region-a", "region-b")] = behind
    world.run(2)
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "switchover", "ops", drill_kind=DrillKind.PLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.ABORTED  # never caught up: rolled back
    wait = record.step(Step.WAIT_REPLICATION)
    assert wait is not None
    assert wait.detail is not None
    assert (wait.detail["fence_lsn"], wait.detail["applied_lsn"]) == (5_000, 4_000)
    assert world.roles()["region-a"] == ("primary", 3)

    world.replication.lags[("region-a", "region-b")] = replace(behind, applied_lsn=5_000)
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "switchover", "ops", drill_kind=DrillKind.PLANNED)
    )
    world.run(2)
    assert world.store.failover(s.failover_id).state is FailoverState.SUCCEEDED
    assert world.roles()["region-b"] == ("primary", 4)  # above the rollback's epoch 3
