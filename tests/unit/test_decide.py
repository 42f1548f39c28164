"""decide(view, policy): plain views in, decisions out; and properties over random views."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.domain.failover import (
    ALLOWED_TRANSITIONS,
    Code,
    DrillKind,
    Intent,
    LoopState,
    Policy,
    ReassertFence,
    RegionView,
    RejectIntent,
    ResumeFailover,
    RunningFailover,
    StartFailover,
    Trigger,
    View,
    decide,
)
from switchyard.domain.health import Health, RegionHealth
from switchyard.domain.region import RegionRole

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = Policy(cooldown=timedelta(minutes=5), min_dwell=timedelta(minutes=1))


def health(status: Health) -> RegionHealth:
    return RegionHealth(status, (), ("a", "b", "w"), 2, status.value)


def region(
    name: str,
    role: RegionRole,
    status: Health = Health.HEALTHY,
    *,
    ready: bool | None = True,
    lag: float | None = None,
    behind: int | None = None,
    since: timedelta = timedelta(hours=1),
) -> RegionView:
    return RegionView(name, role, 1, NOW - since, health(status), ready, "", lag, behind)


def view(*regions: RegionView, **kw: object) -> View:
    return View(NOW, tuple(regions), **kw)  # type: ignore[arg-type]


def starts(decision: object) -> list[StartFailover]:
    return [a for a in decision.actions if isinstance(a, StartFailover)]  # type: ignore[attr-defined]


def test_healthy_primary_means_steady_and_nothing_to_do() -> None:
    d = decide(view(region("a", RegionRole.PRIMARY), region("b", RegionRole.STANDBY)), POLICY)
    assert (d.state, d.code, d.actions) == (LoopState.STEADY, Code.HEALTHY, ())
    assert "primary a is healthy" in d.reason


def test_unhealthy_primary_fails_over_to_the_ready_standby() -> None:
    d = decide(
        view(region("a", RegionRole.PRIMARY, Health.UNHEALTHY), region("b", RegionRole.STANDBY)),
        POLICY,
    )
    assert d.state is LoopState.FAILING_OVER
    assert d.code is Code.FAILOVER_STARTED
    [start] = starts(d)
    assert (start.source, start.target, start.trigger) == ("a", "b", Trigger.AUTOMATIC)


def test_suspect_or_unknown_never_fails_over() -> None:
    for status, code in ((Health.SUSPECT, Code.SUSPECT), (Health.UNKNOWN, Code.HEALTH_UNKNOWN)):
        d = decide(
            view(region("a", RegionRole.PRIMARY, status), region("b", RegionRole.STANDBY)), POLICY
        )
        assert d.code is code
        assert not starts(d)


def test_manual_mode_cooldown_and_dwell_block() -> None:
    regions = (region("a", RegionRole.PRIMARY, Health.UNHEALTHY), region("b", RegionRole.STANDBY))
    d = decide(view(*regions), replace(POLICY, automatic=False))
    assert (d.state, d.code) == (LoopState.BLOCKED, Code.MANUAL_ONLY)
    d = decide(view(*regions, last_failover_at=NOW - timedelta(minutes=1)), POLICY)
    assert d.code is Code.COOLDOWN
    assert "240 s left" in d.reason
    young = region("a", RegionRole.PRIMARY, Health.UNHEALTHY, since=timedelta(seconds=10))
    d = decide(view(young, regions[1]), POLICY)
    assert d.code is Code.DWELL


def test_target_gates() -> None:
    down = region("a", RegionRole.PRIMARY, Health.UNHEALTHY)
    cases = [
        (region("b", RegionRole.STANDBY, ready=False), Code.TARGET_NOT_READY),
        (region("b", RegionRole.STANDBY, ready=None), Code.TARGET_NOT_READY),
        (region("b", RegionRole.STANDBY, Health.UNHEALTHY), Code.TARGET_UNHEALTHY),
        (region("b", RegionRole.STANDBY, lag=31.0), Code.LAG_TOO_HIGH),
        (region("b", RegionRole.STANDBY, lag=1.0, behind=2), Code.SNAPSHOT_BEHIND),
    ]
    for standby, code in cases:
        d = decide(view(down, standby), POLICY)
        assert (d.state, d.code) == (LoopState.BLOCKED, code), standby
    unknown = region("b", RegionRole.STANDBY)
    assert decide(view(down, unknown), POLICY).code is Code.FAILOVER_STARTED
    blocked = decide(view(down, unknown), replace(POLICY, unknown_gates_block=True))
    assert blocked.code is Code.LAG_UNKNOWN


def test_never_automatic_fail_back_to_a_fenced_region() -> None:
    d = decide(
        view(region("b", RegionRole.PRIMARY, Health.UNHEALTHY), region("a", RegionRole.FENCED)),
        POLICY,
    )
    assert (d.state, d.code) == (LoopState.BLOCKED, Code.NO_TARGET)
    assert not starts(d)


def test_running_failover_is_resumed_and_intents_meanwhile_rejected() -> None:
    running = RunningFailover(uuid.uuid4(), "a", "b", "update_dns")
    intent = Intent(uuid.uuid4(), "failover", "b", "test", "ops")
    d = decide(
        view(
            region("a", RegionRole.FENCED),
            region("b", RegionRole.STANDBY),
            running=running,
            intents=(intent,),
        ),
        POLICY,
    )
    assert d.code is Code.FAILOVER_IN_PROGRESS
    assert ResumeFailover(running.id) in d.actions
    [reject] = [a for a in d.actions if isinstance(a, RejectIntent)]
    assert reject.intent_id == intent.id
    assert reject.code is Code.FAILOVER_IN_PROGRESS


def test_intents_are_checked_and_taken() -> None:
    regions = (
        region("a", RegionRole.PRIMARY),
        region("b", RegionRole.STANDBY),
        region("c", RegionRole.FENCED),
    )
    for target, code in (
        ("a", Code.TARGET_IS_PRIMARY),
        ("c", Code.TARGET_NOT_STANDBY),
        ("zz", Code.UNKNOWN_REGION),
    ):
        intent = Intent(uuid.uuid4(), "failover", target, "why", "ops")
        d = decide(view(*regions, intents=(intent,)), POLICY)
        assert d.code is code
        assert [a.intent_id for a in d.actions if isinstance(a, RejectIntent)] == [intent.id]
    drill = Intent(
        uuid.uuid4(),
        "drill",
        "b",
        "game day",
        "ops",
        drill_id=uuid.uuid4(),
        drill_kind=DrillKind.PLANNED,
    )
    d = decide(view(*regions, intents=(drill,)), replace(POLICY, automatic=False))
    [start] = starts(d)
    assert (start.trigger, start.drill_kind, start.intent_id) == (
        Trigger.DRILL,
        DrillKind.PLANNED,
        drill.id,
    )


def test_a_fenced_region_whose_database_still_says_primary_is_fenced_again() -> None:
    stale = replace(
        region("a", RegionRole.FENCED), epoch=3, observed_role="primary", observed_epoch=1
    )
    d = decide(view(stale, region("b", RegionRole.PRIMARY)), POLICY)
    assert ReassertFence("a", 3) in d.actions


# -- properties over random views -------------------------------------------------------

statuses = st.sampled_from(list(Health))
roles = st.sampled_from(list(RegionRole))


@st.composite
def views(draw: st.DrawFn) -> View:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    primary = draw(st.sampled_from([*names, None]))
    regions = tuple(
        RegionView(
            n,
            RegionRole.PRIMARY
            if n == primary
            else draw(
                st.sampled_from([RegionRole.STANDBY, RegionRole.FENCED, RegionRole.RECOVERING])
            ),
            draw(st.integers(0, 5)),
            NOW - timedelta(seconds=draw(st.integers(0, 7200))),
            health(draw(statuses)),
            draw(st.sampled_from([True, False, None])),
            "",
            draw(st.one_of(st.none(), st.floats(0, 100))),
            draw(st.one_of(st.none(), st.integers(0, 4))),
        )
        for n in names
    )
    running = draw(
        st.one_of(st.none(), st.just(RunningFailover(uuid.uuid4(), "a", "b", "fence_source")))
    )
    intents = tuple(
        Intent(uuid.uuid4(), "failover", draw(st.sampled_from(["a", "b", "c", "x"])), "r", "ops")
        for _ in range(draw(st.integers(0, 2)))
    )
    last = draw(st.one_of(st.none(), st.integers(0, 900).map(lambda s: NOW - timedelta(seconds=s))))
    state = draw(st.sampled_from(list(LoopState)))
    return View(NOW, regions, state, running, last, intents)


policies = st.builds(
    Policy,
    automatic=st.booleans(),
    min_dwell=st.integers(0, 600).map(lambda s: timedelta(seconds=s)),
    cooldown=st.integers(0, 600).map(lambda s: timedelta(seconds=s)),
    unknown_gates_block=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(views(), policies)
def test_every_decision_is_an_allowed_and_safe_transition(v: View, policy: Policy) -> None:
    d = decide(v, policy)
    assert (v.state, d.state) in ALLOWED_TRANSITIONS
    assert d.reason
    assert d.code
    begun = starts(d)
    assert len(begun) <= 1
    if v.running is not None:
        assert not begun
        assert d.state is LoopState.FAILING_OVER
    for start in begun:
        target = v.region(start.target)
        source = v.region(start.source)
        assert target is not None
        assert target.role is RegionRole.STANDBY
        assert source is not None
        assert source.role is RegionRole.PRIMARY
        assert d.state is LoopState.FAILING_OVER
        if start.trigger is Trigger.AUTOMATIC:
            assert policy.automatic
            assert source.health.status is Health.UNHEALTHY
            assert target.health.status is Health.HEALTHY
            assert target.ready is True
            assert v.last_failover_at is None or v.now - v.last_failover_at >= policy.cooldown
    taken = {a.intent_id for a in d.actions if isinstance(a, RejectIntent)} | {
        s.intent_id for s in begun if s.intent_id
    }
    if v.intents:
        assert v.intents[0].id in taken  # never left hanging
