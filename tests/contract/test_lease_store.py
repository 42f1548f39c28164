"""LeaseStore contract: every adapter must grant, renew, fence and release the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from switchyard.domain.lease import Lease
from switchyard.errors import FencingError
from switchyard.ports.lease import LeaseStore

LONG_TTL = 30.0
SHORT_TTL = 0.2
PAST_SHORT_TTL = SHORT_TTL + 0.1

Elapse = Callable[[float], None]


@pytest.fixture
def name() -> str:
    # Unique per test: the PostgreSQL store commits, so names must not collide across tests.
    return f"leader-{uuid4().hex[:12]}"


def take(store: LeaseStore, name: str, holder: str, ttl: float = LONG_TTL) -> Lease:
    lease = store.acquire(name, holder, ttl)
    assert lease is not None, f"{holder} was refused {name}"
    return lease


def test_acquire_free_lease_grants_first_token(lease_store: LeaseStore, name: str) -> None:
    lease = take(lease_store, name, "a")

    assert (lease.name, lease.holder, lease.fencing_token) == (name, "a", 1)
    assert lease_store.current(name) == lease
    lease_store.check(lease)


def test_unknown_lease_is_not_current(lease_store: LeaseStore, name: str) -> None:
    assert lease_store.current(name) is None


def test_second_holder_is_refused_while_held(lease_store: LeaseStore, name: str) -> None:
    held = take(lease_store, name, "a")

    assert lease_store.acquire(name, "b", LONG_TTL) is None
    assert lease_store.current(name) == held


def test_renewal_keeps_token_and_extends_expiry(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    first = take(lease_store, name, "a")
    elapse(0.05)

    renewed = take(lease_store, name, "a")

    assert renewed.fencing_token == first.fencing_token
    assert renewed.expires_at > first.expires_at
    # The token names the term, so the value from before the renewal still passes.
    lease_store.check(first)


def test_takeover_after_expiry_increments_token(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    old = take(lease_store, name, "a", SHORT_TTL)
    elapse(PAST_SHORT_TTL)

    assert lease_store.current(name) is None
    new = take(lease_store, name, "b")

    assert new.holder == "b"
    assert new.fencing_token == old.fencing_token + 1


def test_same_holder_after_expiry_gets_a_new_token(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    # A restarted controller reusing its holder id must not share a term with its past self.
    old = take(lease_store, name, "a", SHORT_TTL)
    elapse(PAST_SHORT_TTL)

    new = take(lease_store, name, "a")

    assert new.fencing_token == old.fencing_token + 1
    with pytest.raises(FencingError):
        lease_store.check(old)


def test_token_never_decreases_across_many_takeovers(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    tokens = []
    for round_ in range(8):
        holder = "a" if round_ % 2 == 0 else "b"
        lease = take(lease_store, name, holder, SHORT_TTL)
        tokens.append(lease.fencing_token)
        # Alternate the two ways a term ends.
        if round_ % 2 == 0:
            lease_store.release(lease)
        else:
            elapse(PAST_SHORT_TTL)

    assert tokens == list(range(1, 9))


def test_release_lets_another_holder_in_with_a_higher_token(
    lease_store: LeaseStore, name: str
) -> None:
    old = take(lease_store, name, "a")

    lease_store.release(old)

    assert lease_store.current(name) is None
    new = take(lease_store, name, "b")
    assert new.fencing_token > old.fencing_token


def test_releasing_a_stale_lease_leaves_the_new_holder(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    old = take(lease_store, name, "a", SHORT_TTL)
    elapse(PAST_SHORT_TTL)
    new = take(lease_store, name, "b")

    lease_store.release(old)

    assert lease_store.current(name) == new
    lease_store.check(new)


def test_check_refuses_a_lease_taken_over(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    old = take(lease_store, name, "a", SHORT_TTL)
    elapse(PAST_SHORT_TTL)
    new = take(lease_store, name, "b")

    with pytest.raises(FencingError, match="no longer current"):
        lease_store.check(old)
    lease_store.check(new)


def test_check_refuses_an_expired_lease_nobody_took(
    lease_store: LeaseStore, name: str, elapse: Elapse
) -> None:
    lease = take(lease_store, name, "a", SHORT_TTL)
    elapse(PAST_SHORT_TTL)

    with pytest.raises(FencingError, match="expired"):
        lease_store.check(lease)


def test_check_refuses_a_released_lease(lease_store: LeaseStore, name: str) -> None:
    lease = take(lease_store, name, "a")
    lease_store.release(lease)

    with pytest.raises(FencingError):
        lease_store.check(lease)


def test_check_refuses_a_lease_never_granted(lease_store: LeaseStore, name: str) -> None:
    forged = Lease(
        name=name, holder="a", fencing_token=1, expires_at=datetime(2999, 1, 1, tzinfo=UTC)
    )

    with pytest.raises(FencingError):
        lease_store.check(forged)


def test_acquire_rejects_a_non_positive_ttl(lease_store: LeaseStore, name: str) -> None:
    with pytest.raises(ValueError, match="ttl"):
        lease_store.acquire(name, "a", 0)


@pytest.mark.parametrize("contenders", [2, 8])
def test_concurrent_acquirers_exactly_one_wins(
    lease_store: LeaseStore, name: str, contenders: int
) -> None:
    start = threading.Barrier(contenders)
    results: dict[str, Lease | None] = {}
    errors: list[BaseException] = []

    def contend(holder: str) -> None:
        try:
            start.wait()
            results[holder] = lease_store.acquire(name, holder, LONG_TTL)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(f"c{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    winners = [lease for lease in results.values() if lease is not None]
    assert len(results) == contenders
    assert len(winners) == 1
    assert winners[0].fencing_token == 1
    assert lease_store.current(name) == winners[0]
