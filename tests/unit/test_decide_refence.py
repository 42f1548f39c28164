"""decide(view, policy) re-fences every region whose own database claims primary when the
control plane records it in another role; plain views, and a property over random ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.domain.failover import (
    Code,
    Intent,
    Policy,
    ReassertFence,
    RegionView,
    RunningFailover,
    StartFailover,
    View,
    decide,
)
from switchyard.domain.health import Health, RegionHealth
from switchyard.domain.region import RegionRole

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = Policy(cooldown=timedelta(minutes=5), min_dwell=timedelta(minutes=1))
P, S, F = RegionRole.PRIMARY, RegionRole.STANDBY, RegionRole.FENCED


def region(
    name: str,
    role: RegionRole,
    epoch: int,
    *,
    claims: int | None = None,
    status: Health = Health.HEALTHY,
) -> RegionView:
    """``claims``: the epoch at which the region's own database says primary, if it does."""
    return RegionView(
        name,
        role,
        epoch,
        NOW - timedelta(hours=1),
        RegionHealth(status, (), ("a", "b", "w"), 2, status.value),
        True,
        observed_role=None if claims is None else P.value,
        observed_epoch=claims,
    )


def fences(decision: object) -> list[ReassertFence]:
    return [a for a in decision.actions if isinstance(a, ReassertFence)]  # type: ignore[attr-defined]


def starts(decision: object) -> list[StartFailover]:
    return [a for a in decision.actions if isinstance(a, StartFailover)]  # type: ignore[attr-defined]


def test_a_standby_claiming_the_primary_epoch_is_fenced_above_its_claim() -> None:
    # What the old rollback left: a's database says primary at b's epoch; the store: standby.
    # b, the recorded primary, is never fenced, even on an observation older than its term.
    d = decide(View(NOW, (region("a", S, 2, claims=2), region("b", P, 2, claims=1))), POLICY)
    assert fences(d) == [ReassertFence("a", 3, F, record=True)]


def test_a_standby_claiming_an_older_epoch_gets_its_recorded_role_back() -> None:
    d = decide(View(NOW, (region("a", S, 2, claims=1), region("b", P, 2))), POLICY)
    assert fences(d) == [ReassertFence("a", 2, S)]


def test_a_region_fenced_anew_is_never_the_target_of_that_decision() -> None:
    regions = (region("a", P, 2, status=Health.UNHEALTHY), region("b", S, 1, claims=1))
    automatic = decide(View(NOW, regions), POLICY)
    assert fences(automatic) == [ReassertFence("b", 2, F, record=True)]
    assert starts(automatic) == []
    assert automatic.code is Code.NO_TARGET

    intent = Intent(uuid.uuid4(), "failover", "b", "move", "ops")
    claimed = (region("a", P, 2), region("b", S, 1, claims=1))
    manual = decide(View(NOW, claimed, intents=(intent,)), POLICY)
    assert starts(manual) == []
    assert manual.code is Code.TARGET_NOT_STANDBY


def test_the_running_failovers_regions_are_left_to_its_saga() -> None:
    # Mid-promotion (database written, store not yet) and mid-rollback: the saga's states.
    running = RunningFailover(uuid.uuid4(), "a", "b", "promote_target")
    promoting = (region("a", S, 3, claims=2), region("b", S, 1, claims=3))
    assert fences(decide(View(NOW, promoting, running=running), POLICY)) == []
    rolling_back = (region("a", S, 3, claims=4), region("b", S, 1))
    assert fences(decide(View(NOW, rolling_back, running=running), POLICY)) == []
    # A fence the saga recorded is still re-asserted on its source (what its step writes).
    unreached = (region("a", F, 3, claims=2), region("b", S, 1))
    assert fences(decide(View(NOW, unreached, running=running), POLICY)) == [
        ReassertFence("a", 3, F)
    ]


# -- a property over random views ----------------------------------------------------------


@st.composite
def views(draw: st.DrawFn) -> View:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    primary = draw(st.sampled_from([*names, None]))
    regions = tuple(
        region(
            n,
            P if n == primary else draw(st.sampled_from([S, F, RegionRole.RECOVERING])),
            draw(st.integers(0, 5)),
            claims=draw(st.one_of(st.none(), st.integers(0, 6))),
            status=draw(st.sampled_from(list(Health))),
        )
        for n in names
    )
    running = draw(st.one_of(st.none(), st.just(RunningFailover(uuid.uuid4(), "a", "b", "x"))))
    intents = tuple(
        Intent(uuid.uuid4(), "failover", draw(st.sampled_from(["a", "b", "c"])), "r", "ops")
        for _ in range(draw(st.integers(0, 1)))
    )
    return View(NOW, regions, running=running, intents=intents)


@settings(max_examples=400, deadline=None)
@given(views())
def test_only_the_recorded_primary_may_claim_primary(v: View) -> None:
    d = decide(v, POLICY)
    by_region = {f.region: f for f in fences(d)}
    busy = () if v.running is None else (v.running.source, v.running.target)
    for r in v.regions:
        claims = r.observed_role == P.value
        if r.role is P or not claims:
            assert r.name not in by_region
        elif r.name not in busy:
            fence = by_region[r.name]
            assert fence.role is not P
            if r.observed_epoch is not None and r.observed_epoch >= r.epoch:
                assert (fence.epoch, fence.role, fence.record) == (r.observed_epoch + 1, F, True)
            else:
                assert (fence.epoch, fence.role, fence.record) == (r.epoch, r.role, False)
    for start in starts(d):
        assert start.target not in {f.region for f in fences(d) if f.record}
        target = v.region(start.target)
        assert target is not None
        assert target.role is S
