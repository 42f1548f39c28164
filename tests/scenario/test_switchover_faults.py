"""Planned switchovers under seeded schedules of faults, checked over the whole history.

Each schedule runs several switchovers back and forth; in each, the target may lag (so the
wait runs out and the switchover rolls back) and replication may catch up later, and any
region-database write may be followed by a control-store outage of a few cycles or by the
leader's crash right after the write (its connection lost, the step cut short). Then faults
heal and the loop must finish what it started. The checker reads every state the region
databases passed through: never two primaries, never a promotion after a failed wait, and the
control plane and the databases agree at the end.
"""

from __future__ import annotations

import random

import pytest

from scenario.world import World, topology
from switchyard.db.region_state import RegionState
from switchyard.domain.failover import DrillKind, IntentRequest
from switchyard.domain.region import RegionRole
from switchyard.domain.saga import FailoverState, Step, StepStatus
from switchyard.errors import TransientError

SCHEDULES = 16
SWITCHOVERS = 3


class Faults:
    """What the schedule does after a region-database write, and for how long."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.store_down_for = 0  # cycles left with the control store unreachable
        self.injected: list[str] = []

    def after_write(self, state: RegionState) -> None:
        roll = self.rng.random()
        if roll < 0.25:
            self.world.store.fail = True
            self.store_down_for = self.rng.randint(1, 4)
            self.injected.append(f"store down after {state.region} {state.role.value}")
        elif roll < 0.4:
            lease = self.world.leases.current("controller")
            if lease is not None:
                self.world.crashed.add(lease.holder)
                self.injected.append(f"leader {lease.holder} crashed after a write")
                raise TransientError("connection lost right after the write")

    def tick(self) -> None:
        if self.store_down_for:
            self.store_down_for -= 1
            if not self.store_down_for:
                self.world.store.fail = False
        if self.world.crashed and self.rng.random() < 0.1:
            self.world.crashed.clear()  # a crashed controller is restarted

    def heal(self) -> None:
        self.world.databases.on_set = None
        self.world.store.fail = False
        self.store_down_for = 0
        self.world.crashed.clear()


def primaries(moment: dict[str, RegionState]) -> list[str]:
    return sorted(r for r, s in moment.items() if s.role is RegionRole.PRIMARY)


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_switchovers_under_faults_never_leave_two_primaries(seed: int) -> None:
    rng = random.Random(seed)
    world = World(topology())
    faults = Faults(world, rng)
    world.run(2)
    for _ in range(SWITCHOVERS):
        [source] = [r.name for r in world.store.regions() if r.role is RegionRole.PRIMARY]
        [target] = [r.name for r in world.store.regions() if r.role is RegionRole.STANDBY]
        lagging = rng.random() < 0.5
        world.databases.writes = {source: {"s/1": world.clock.now()} if lagging else {}}
        submitted = world.store.submit_intent(
            IntentRequest("drill", target, "switchover", "ops", drill_kind=DrillKind.PLANNED)
        )
        world.databases.on_set = faults.after_write
        catch_up_at = rng.randint(1, 8) if lagging and rng.random() < 0.5 else None
        for cycle in range(10):
            if cycle == catch_up_at:
                world.databases.writes[target] = dict(world.databases.writes[source])
            world.tick()
            faults.tick()
        faults.heal()
        world.run(25)  # the lease of a crashed leader expires; the next one finishes the saga

        record = world.store.failover(submitted.failover_id)
        assert record.state in (FailoverState.SUCCEEDED, FailoverState.ABORTED), faults.injected
        steps = {s.name: s for s in record.steps}
        if record.rolling_back:
            assert record.state is FailoverState.ABORTED
            assert steps[Step.RESTORE_SOURCE].status is StepStatus.SUCCEEDED
            assert steps[Step.PROMOTE_TARGET].status is StepStatus.PENDING
            assert steps[Step.PROMOTE_TARGET].attempts == 0
            expected = {source: ("primary", record.rollback_epoch)}
        else:
            assert record.state is FailoverState.SUCCEEDED, faults.injected
            expected = {source: ("standby", record.epoch), target: ("primary", record.epoch)}
        roles = world.roles()
        assert {r: roles[r] for r in expected} == expected, faults.injected
        # The control plane and each region's own database agree.
        for name, (role, epoch) in roles.items():
            state = world.databases.states[name]
            assert (state.role.value, state.epoch) == (role, epoch), faults.injected

    assert [primaries(m) for m in world.databases.history if len(primaries(m)) > 1] == []
    assert not [e for e in world.store.events if e.action == "region.refence"]
