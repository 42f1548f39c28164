"""The fault-history checker on hand-built histories: it finds every kind of violation it
claims to, and stays quiet on a safe history (overlapping requests included)."""

from __future__ import annotations

from support.history import (
    History,
    Promotion,
    StoredTurn,
    Transition,
    Write,
    check,
    token_in,
)

A, B = "region-a", "region-b"


def ack(token: str, region: str, epoch: int, sent: float, answered: float | None = None) -> Write:
    return Write(
        0,
        region,
        token,
        sent,
        sent + 0.05 if answered is None else answered,
        200,
        session_id="s",
        epoch=epoch,
        turn=2,
    )


def refused(token: str, region: str, sent: float, code: str = "region_standby") -> Write:
    return Write(0, region, token, sent, sent + 0.01, 503, code)


def switchover(**changes: object) -> Transition:
    base: dict[str, object] = {
        "name": "round 1",
        "planned": True,
        "source": A,
        "target": B,
        "source_epoch": 1,
        "state": "succeeded",
        "primary_after": B,
        "held_after": frozenset({"t1", "t2"}),
    }
    return Transition(**(base | changes))  # type: ignore[arg-type]


def rules(history: History) -> list[str]:
    return [v.rule for v in check(history)]


# A switchover at t=10: a accepts until 9.9, b from 10.2 at epoch 2; the standby refuses.
SAFE = History(
    writes=(
        ack("t1", A, 1, 9.0),
        refused("t2x", B, 9.1),
        ack("t2", A, 1, 9.8, 9.9),
        refused("t3x", A, 10.3, "region_standby"),
        ack("t3", B, 2, 10.4),
        Write(1, A, "t4", 9.95, 15.0, 0),  # no answer: neither accepted nor refused
    ),
    stored=(
        StoredTurn(A, A, 1, 9.05, "t1"),
        StoredTurn(A, A, 1, 9.85, "t2"),
        StoredTurn(B, A, 1, 9.05, "t1"),  # replicated: the row keeps its writer
        StoredTurn(B, A, 1, 9.85, "t2"),
        StoredTurn(B, B, 2, 10.42, "t3"),
    ),
    promotions=(Promotion(B, 2, 10.1),),
    transitions=(switchover(held_after=frozenset({"t1", "t2", "t3"})),),
)


def test_a_safe_history_has_no_violation() -> None:
    assert check(SAFE) == []


def test_two_regions_acknowledging_one_epoch_is_a_violation() -> None:
    history = History(writes=(ack("t1", A, 2, 1.0), ack("t2", B, 2, 1.0)))
    found = check(history)
    assert [v.rule for v in found] == ["one_writer_per_epoch"]
    assert "epoch 2 was written by region-a, region-b" in found[0].detail


def test_two_regions_storing_one_epoch_is_a_violation_even_unacknowledged() -> None:
    # The client never heard back from b, but b's database holds a turn it wrote at epoch 2.
    history = History(
        writes=(ack("t1", A, 2, 1.0), Write(0, B, "t2", 1.0, 6.0, 0)),
        stored=(StoredTurn(A, A, 2, 1.01, "t1"), StoredTurn(B, B, 2, 1.02, "t2")),
    )
    assert rules(history) == ["one_writer_per_epoch"]


def test_the_old_primary_accepting_after_the_promotion_is_a_violation() -> None:
    # b promoted at epoch 2 at t=10; a's database came back claiming epoch 1 and took a write
    # sent at 12, before anyone wrote to b.
    history = History(
        writes=(ack("t1", A, 1, 5.0), ack("t2", A, 1, 12.0)),
        promotions=(Promotion(B, 2, 10.0),),
    )
    found = check(history)
    assert [v.rule for v in found] == ["stale_write_after_promotion"]
    assert "t2 region-a epoch 1" in found[0].detail


def test_a_stale_turn_stored_after_the_promotion_is_a_violation() -> None:
    history = History(
        writes=(),
        stored=(StoredTurn(A, A, 1, 12.0, "t9"),),
        promotions=(Promotion(B, 2, 10.0),),
    )
    assert rules(history) == ["stale_write_after_promotion"]


def test_an_older_epoch_accepted_after_a_client_saw_a_newer_one_is_a_violation() -> None:
    # No promotion on record (say the control store lost it): the clients' order suffices.
    history = History(writes=(ack("t1", B, 3, 20.0, 20.1), ack("t2", A, 2, 20.5)))
    assert rules(history) == ["stale_write_after_promotion"]


def test_requests_overlapping_the_promotion_prove_nothing() -> None:
    # Sent before b's promotion and b's first answer, answered after: either order is
    # possible, so it is not counted.
    history = History(
        writes=(ack("t1", B, 2, 10.2, 10.3), ack("t2", A, 1, 9.9, 10.6)),
        promotions=(Promotion(B, 2, 10.0),),
    )
    assert check(history) == []


def test_a_switchover_losing_an_acknowledged_turn_is_a_violation() -> None:
    history = History(
        writes=(ack("t1", A, 1, 1.0), ack("t2", A, 1, 2.0)),
        transitions=(switchover(held_after=frozenset({"t1"})),),
    )
    found = check(history)
    assert [v.rule for v in found] == ["planned_loss"]
    assert "1 of 2 turns" in found[0].detail
    assert "t2" in found[0].detail


def test_a_rolled_back_switchover_must_keep_everything_on_the_primary() -> None:
    kept = switchover(state="aborted", primary_after=A, held_after=frozenset({"t1", "t2"}))
    writes = (ack("t1", A, 1, 1.0), ack("t2", A, 1, 2.0))
    assert check(History(writes=writes, transitions=(kept,))) == []
    lost = switchover(state="aborted", primary_after=A, held_after=frozenset({"t1"}))
    assert rules(History(writes=writes, transitions=(lost,))) == ["planned_loss"]


def test_an_unplanned_loss_must_be_counted_by_the_report() -> None:
    writes = (ack("t1", A, 1, 1.0), ack("t2", A, 1, 2.0), ack("t3", A, 1, 3.0))
    lost_two = {"planned": False, "held_after": frozenset({"t1"}), "fenced_at": 3.5}
    counted = switchover(**lost_two, unreplicated_writes=4, rpo_seconds=2.0)
    assert check(History(writes=writes, transitions=(counted,))) == []
    undercounted = switchover(**lost_two, unreplicated_writes=1, rpo_seconds=2.0)
    assert rules(History(writes=writes, transitions=(undercounted,))) == ["unreported_loss"]
    unknown = switchover(**lost_two, unreplicated_writes=None, rpo_seconds=None)
    found = check(History(writes=writes, transitions=(unknown,)))
    assert [v.rule for v in found] == ["unreported_loss"]
    assert "loss figures are unknown" in found[0].detail


def test_without_a_count_the_rpo_must_cover_the_oldest_lost_write() -> None:
    # t2 was answered at 2.05 and the fence came at 3.5: it was at least 1.45 s old.
    writes = (ack("t1", A, 1, 1.0), ack("t2", A, 1, 2.0), ack("t3", A, 1, 3.0))
    lost = {"planned": False, "held_after": frozenset({"t1"}), "fenced_at": 3.5}
    bounded = switchover(**lost, unreplicated_writes=None, rpo_seconds=1.5)
    assert check(History(writes=writes, transitions=(bounded,))) == []
    understated = switchover(**lost, unreplicated_writes=None, rpo_seconds=0.0)
    found = check(History(writes=writes, transitions=(understated,)))
    assert [v.rule for v in found] == ["unreported_loss"]
    assert "1.45 s old at the fence" in found[0].detail


def test_a_write_lost_after_the_fence_was_measured_is_unreported() -> None:
    # The source kept acknowledging after its (unconfirmed) fence: the report cannot hold it.
    writes = (ack("t1", A, 1, 1.0), ack("t2", A, 1, 4.0))
    late = switchover(
        planned=False,
        held_after=frozenset({"t1"}),
        fenced_at=3.5,
        unreplicated_writes=10,
        rpo_seconds=5.0,
    )
    found = check(History(writes=writes, transitions=(late,)))
    assert [v.rule for v in found] == ["unreported_loss"]
    assert "sent after the fence" in found[0].detail


def test_only_the_source_epoch_counts_and_unsettled_transitions_are_skipped() -> None:
    # a's epoch-1 turns were lost in an earlier failover (reported then); this switchover is
    # about what a wrote at epoch 3.
    writes = (ack("old", A, 1, 1.0), ack("t1", A, 3, 5.0))
    now = switchover(source_epoch=3, held_after=frozenset({"t1"}))
    assert check(History(writes=writes, transitions=(now,))) == []
    stuck = switchover(source_epoch=3, state="running", held_after=frozenset())
    assert check(History(writes=writes, transitions=(stuck,))) == []


def test_tokens_are_read_back_from_stored_messages() -> None:
    assert token_in("How many vacation days do I get? [s1-w2-37]") == "s1-w2-37"
    assert token_in("no token here") is None
