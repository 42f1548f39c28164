"""An unplanned failover promotes only once the old primary has provably stopped taking writes:
its database recorded the fence, Vault revoked its logins, or nothing of it answered a probe
for the isolation timeout. Until then the fence step is retried every cycle, saying why. And the
RPO at the fence comes from CDC positions when they are known."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from scenario.world import ADDRESSES, World, topology
from switchyard.adapters.replication_memory import caught_up
from switchyard.domain.failover import DrillKind, IntentRequest
from switchyard.domain.saga import FailoverRecord, FailoverState, Step, StepStatus

ISOLATION = 60.0


def _isolated_world() -> World:
    return World(topology(isolation_timeout_seconds=ISOLATION))


def _fence(record: FailoverRecord) -> dict[str, object]:
    step = record.step(Step.FENCE_SOURCE)
    assert step is not None
    assert step.detail is not None
    return dict(step.detail)


def test_nothing_fenced_is_not_promoted_until_the_isolation_timeout_has_passed() -> None:
    world = _isolated_world()
    world.run(3)
    last_good_round = world.clock.now() - timedelta(seconds=1)
    world.kill("region-a")  # its database unreachable too
    world.credentials.down = True  # and Vault cannot revoke its runtime's logins

    world.run(int(ISOLATION) - 5)  # the failover starts after three failed rounds, then waits
    running = world.store.running_failover()
    assert running is not None
    fence = running.step(Step.FENCE_SOURCE)
    assert fence is not None
    assert fence.status is StepStatus.FAILED
    assert fence.attempts > 10  # retried every cycle, never aborted
    assert "not promoting: the fence is unconfirmed" in fence.reason
    assert _fence(running)["fence_proof"] is None
    assert (
        _fence(running)["promotable_at"]
        == (last_good_round + timedelta(seconds=ISOLATION)).isoformat()
    )
    assert world.roles()["region-b"] == ("standby", 0)
    assert world.databases.states["region-b"].role.value == "standby"
    assert world.answer() == (ADDRESSES["region-a"],)

    world.run(10)  # past last_good_round + the isolation timeout
    record = world.store.failover(running.id)
    assert record.state is FailoverState.SUCCEEDED
    assert world.roles()["region-b"] == ("primary", 2)
    fence_detail = _fence(record)
    assert fence_detail["fence_proof"] == "isolation_timeout"
    assert fence_detail["fence_confirmed"] is False
    assert (fence_detail["database_fenced"], fence_detail["leases_revoked"]) == (False, False)
    promoted = record.step(Step.PROMOTE_TARGET)
    assert promoted is not None
    assert promoted.finished_at is not None
    assert promoted.finished_at >= last_good_round + timedelta(seconds=ISOLATION)


def test_a_vantage_that_still_reaches_the_old_primary_holds_the_promotion() -> None:
    world = _isolated_world()
    world.run(3)
    # A majority loses region-a, but the vantage beside it still gets answers: it may still
    # be taking writes there, so the wait never ends while that lasts.
    world.unreachable["region-b"] = {"region-a"}
    world.unreachable["witness"] = {"region-a"}
    world.databases.down.add("region-a")
    world.credentials.down = True

    world.run(int(ISOLATION) * 2)
    running = world.store.running_failover()
    assert running is not None
    fence = running.step(Step.FENCE_SOURCE)
    assert fence is not None
    assert fence.status is StepStatus.FAILED
    assert "region-a may have answered as late as" in fence.reason
    assert world.roles()["region-b"] == ("standby", 0)

    world.unreachable["region-a"] = {"region-a"}  # now nobody hears from it
    world.run(int(ISOLATION) + 5)
    assert world.store.failover(running.id).state is FailoverState.SUCCEEDED
    assert world.roles()["region-b"] == ("primary", 2)


def test_a_span_the_control_store_did_not_record_is_not_counted_as_silence() -> None:
    world = _isolated_world()
    world.run(3)
    world.store.fail = True  # 30 s in which probes reached region-a but nothing was recorded
    world.run(30)
    store_back = world.clock.now()
    world.store.fail = False
    world.kill("region-a")
    world.credentials.down = True

    world.run(int(ISOLATION) - 5)  # long past its last recorded answer, not past store_back
    running = world.store.running_failover()
    assert running is not None
    assert (
        _fence(running)["promotable_at"] == (store_back + timedelta(seconds=ISOLATION)).isoformat()
    )
    assert world.roles()["region-b"] == ("standby", 0)

    world.run(10)
    assert world.store.failover(running.id).state is FailoverState.SUCCEEDED
    assert world.roles()["region-b"] == ("primary", 2)


def test_revoked_leases_are_proof_enough_and_the_drill_report_says_so() -> None:
    world = _isolated_world()
    world.run(2)
    world.databases.down.add("region-a")  # the fence cannot reach its database; Vault works
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "game day", "ops", drill_kind=DrillKind.UNPLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    assert _fence(record)["fence_proof"] == "leases_revoked"
    assert _fence(record)["fence_confirmed"] is False
    assert not world.credentials.is_live(world.runtime_lease)
    assert s.drill_id is not None
    report = world.store.drill(s.drill_id).report
    assert report is not None
    assert report["fence_proof"] == "leases_revoked"


def test_a_fence_its_database_recorded_is_the_database_proof() -> None:
    world = _isolated_world()
    world.run(2)
    world.credentials.down = True  # Vault down does not matter: the database fence holds
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "game day", "ops", drill_kind=DrillKind.UNPLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    assert (_fence(record)["fence_proof"], _fence(record)["fence_confirmed"]) == ("database", True)
    assert s.drill_id is not None
    report = world.store.drill(s.drill_id).report
    assert report is not None
    assert report["fence_proof"] == "database"


def test_rpo_at_the_fence_comes_from_cdc_positions_not_from_reading_turns() -> None:
    world = World(topology(), cdc=True)
    assert world.replication is not None
    world.run(2)
    now = world.clock.now()
    # Turns that a key comparison would count as lost: positions must be what decides.
    world.databases.writes["region-a"] = {"s1/1": now, "s1/2": now}
    world.databases.writes["region-b"] = {}
    world.replication.positions["region-a"] = 9_000
    world.replication.lags[("region-a", "region-b")] = replace(
        caught_up("region-a", "region-b"),
        applied_lsn=8_500,
        consumer_lag_messages=3,
        source_commit_at=now - timedelta(seconds=12),
        heartbeat_at=now - timedelta(seconds=4),
    )
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "game day", "ops", drill_kind=DrillKind.UNPLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    fence = _fence(record)
    assert fence["rpo_from"] == "positions"
    assert (fence["fence_lsn"], fence["applied_lsn"], fence["unapplied_bytes"]) == (
        9_000,
        8_500,
        500,
    )
    assert fence["unapplied_records"] == 3
    # At most as old as the newest thing applied (the heartbeat 4 s before, plus the cycles
    # since); how many writes that is, positions cannot say.
    assert (
        fence["rpo_seconds"]
        == (
            world.store.failover(s.failover_id).started_at - (now - timedelta(seconds=4))
        ).total_seconds()
    )
    assert fence["rpo_exact"] is False
    assert fence["unreplicated_writes"] is None


def test_with_the_source_database_gone_the_rpo_is_bounded_by_what_was_applied() -> None:
    world = World(topology(), cdc=True)
    assert world.replication is not None
    world.run(2)
    now = world.clock.now()
    world.replication.lags[("region-a", "region-b")] = replace(
        caught_up("region-a", "region-b"),
        applied_lsn=8_500,
        heartbeat_at=now - timedelta(seconds=3),
    )
    world.databases.down.add("region-a")  # fenced by revoking its leases
    world.replication.unreachable.add("region-a")
    s = world.store.submit_intent(
        IntentRequest("drill", "region-b", "game day", "ops", drill_kind=DrillKind.UNPLANNED)
    )
    world.run(2)
    record = world.store.failover(s.failover_id)
    assert record.state is FailoverState.SUCCEEDED
    fence = _fence(record)
    assert (fence["fence_proof"], fence["rpo_from"]) == ("leases_revoked", "positions")
    assert (fence["fence_lsn"], fence["unapplied_bytes"]) == (None, None)
    assert (
        fence["rpo_seconds"] == (record.started_at - (now - timedelta(seconds=3))).total_seconds()
    )
    assert s.drill_id is not None
    report = world.store.drill(s.drill_id).report
    assert report is not None
    assert (report["rpo_seconds"], report["unreplicated_writes"]) == (fence["rpo_seconds"], None)


def test_a_target_that_applied_everything_up_to_the_fence_lost_nothing() -> None:
    world = World(topology(), cdc=True)
    assert world.replication is not None
    world.run(2)
    world.databases.writes["region-a"] = {"s1/1": world.clock.now()}  # not consulted
    world.replication.positions["region-a"] = 9_000
    world.replication.lags[("region-a", "region-b")] = replace(
        caught_up("region-a", "region-b"), applied_lsn=9_000
    )
    s = world.store.submit_intent(
        IntentRequest(
            "drill",
            "region-b",
            "game day",
            "ops",
            drill_kind=DrillKind.UNPLANNED,
            objectives={"rpo_seconds": 0},
        )
    )
    world.run(2)
    assert s.drill_id is not None
    drill = world.store.drill(s.drill_id)
    assert drill.report is not None
    assert (drill.report["rpo_seconds"], drill.report["unreplicated_writes"]) == (0.0, 0)
    assert drill.report["rpo_from"] == "positions"
    assert drill.status == "passed"
