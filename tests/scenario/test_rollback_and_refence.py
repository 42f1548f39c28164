"""Issue 13, defects 4 and 6 on the whole loop: a planned switchover's rollback is a stored
step that the next leader resumes after a control-store blip (never promoting the target),
and the loop fences a region whose own database claims a term the control plane never gave
it. A checker reads every state the region databases passed through: never two primaries."""

from __future__ import annotations

from scenario.world import ADDRESSES, World, topology
from switchyard.db.region_state import RegionState
from switchyard.domain.failover import DrillKind, IntentRequest
from switchyard.domain.region import RegionRole
from switchyard.domain.saga import FailoverState, Step, StepStatus


def two_primaries(world: World) -> list[dict[str, tuple[str, int]]]:
    """Every recorded moment at which more than one region database said primary."""
    return [
        {r: (s.role.value, s.epoch) for r, s in moment.items()}
        for moment in world.databases.history
        if sum(s.role is RegionRole.PRIMARY for s in moment.values()) > 1
    ]


def switchover(world: World) -> IntentRequest:
    return IntentRequest(
        "drill", "region-b", "planned switchover", "ops", drill_kind=DrillKind.PLANNED
    )


def test_a_rollback_cut_short_by_a_control_store_blip_is_resumed_by_the_next_leader() -> None:
    world = World(topology())
    world.run(2)
    # region-a holds a write region-b lacks: the switchover's wait runs out and rolls back.
    world.databases.writes["region-a"] = {"s1/1": world.clock.now()}

    def witness_blip(state: RegionState) -> None:
        # The control store goes away just after the rollback's database write.
        if state.region == "region-a" and state.role is RegionRole.PRIMARY:
            world.store.fail = True

    world.databases.on_set = witness_blip
    submitted = world.store.submit_intent(switchover(world))
    lease = world.leases.current("controller")
    assert lease is not None
    reports = world.run(1)
    assert any(r.error and "stopped acting" in r.error for r in reports)
    assert world.databases.states["region-a"].role is RegionRole.PRIMARY

    # The leader dies with the rollback unrecorded; the store comes back, and meanwhile
    # replication caught up, so re-running the wait would now succeed and promote.
    world.databases.on_set = None
    world.crashed.add(lease.holder)
    world.store.fail = False
    world.databases.writes["region-b"] = dict(world.databases.writes["region-a"])
    world.run(20)

    new_lease = world.leases.current("controller")
    assert new_lease is not None
    assert new_lease.holder != lease.holder
    record = world.store.failover(submitted.failover_id)
    assert record.state is FailoverState.ABORTED
    steps = {s.name: s for s in record.steps}
    assert (steps[Step.WAIT_REPLICATION].status, steps[Step.WAIT_REPLICATION].attempts) == (
        StepStatus.FAILED,
        1,  # the failed wait is the stored decision to roll back: never run again
    )
    assert steps[Step.RESTORE_SOURCE].status is StepStatus.SUCCEEDED
    assert steps[Step.RESTORE_SOURCE].attempts >= 2
    assert steps[Step.PROMOTE_TARGET].status is StepStatus.PENDING
    assert world.roles() == {"region-a": ("primary", 3), "region-b": ("standby", 0)}
    a, b = world.databases.states["region-a"], world.databases.states["region-b"]
    assert (a.role, a.epoch, a.fencing_token) == (
        RegionRole.PRIMARY,
        3,
        new_lease.fencing_token,
    )
    assert (b.role, b.epoch) == (RegionRole.STANDBY, 0)
    assert not any(
        m["region-b"].role is RegionRole.PRIMARY for m in world.databases.history if "region-b" in m
    )
    assert two_primaries(world) == []
    assert world.answer() == (ADDRESSES["region-a"],)


def test_a_standby_whose_database_claims_the_primary_epoch_is_fenced_above_its_claim() -> None:
    world = World(topology())
    world.run(2)
    submitted = world.store.submit_intent(switchover(world))
    world.run(6)  # observations from before the switchover still say region-a is primary
    assert world.store.failover(submitted.failover_id).state is FailoverState.SUCCEEDED
    # Those older observations only re-assert what is recorded: a clean standby stays one.
    assert world.roles() == {"region-a": ("standby", 2), "region-b": ("primary", 2)}
    assert not [e for e in world.store.events if e.action == "region.refence"]
    assert two_primaries(world) == []

    # The state the old rollback could leave: region-a's own database says primary at the
    # epoch region-b was promoted at, while the control plane records it as a standby.
    world.databases.seed("region-a", RegionRole.PRIMARY, 2)
    world.run(2)

    assert world.roles() == {"region-a": ("fenced", 3), "region-b": ("primary", 2)}
    a = world.databases.states["region-a"]
    assert (a.role, a.epoch) == (RegionRole.FENCED, 3)
    refenced = [e for e in world.store.events if e.action == "region.refence"]
    assert [(e.region, e.after) for e in refenced] == [("region-a", {"role": "fenced", "epoch": 3})]
    assert world.databases.history[-1]["region-b"].role is RegionRole.PRIMARY


def test_a_rollback_whose_finish_was_cut_short_still_ends_and_frees_the_loop() -> None:
    """The control store goes away after ``restore_source`` succeeded but before the failover
    was recorded as ended (seen in the fault-history test: the switchover then stayed
    "running" and every later drill was refused with 409)."""
    world = World(topology())
    world.run(2)
    world.databases.writes["region-a"] = {"s1/1": world.clock.now()}
    real_finish = world.store.finish_failover
    blips = []

    def finish_after_a_blip(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not blips:
            blips.append(True)
            world.store.fail = True
        return real_finish(*args, **kwargs)

    world.store.finish_failover = finish_after_a_blip  # type: ignore[method-assign]
    submitted = world.store.submit_intent(switchover(world))
    world.run(1)
    assert blips
    world.store.fail = False
    world.run(10)

    record = world.store.failover(submitted.failover_id)
    assert record.state is FailoverState.ABORTED
    assert world.store.running_failover() is None
    assert world.roles() == {"region-a": ("primary", 3), "region-b": ("standby", 0)}
