"""The lease rules every LeaseStore adapter shares (domain.lease)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchyard.domain.lease import Lease, grant, released, verify
from switchyard.errors import FencingError

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lease(holder: str = "a", token: int = 1, expires: float = 10) -> Lease:
    return Lease(name="leader", holder=holder, fencing_token=token, expires_at=at(expires))


def test_lease_is_live_until_its_expiry_exclusive() -> None:
    held = lease(expires=10)

    assert held.is_live(at(9.999))
    assert not held.is_live(at(10))


def test_first_grant_has_token_one() -> None:
    granted = grant(None, name="leader", holder="a", ttl_seconds=5, now=T0)

    assert granted == lease(token=1, expires=5)


def test_live_lease_is_refused_to_another_holder() -> None:
    assert grant(lease(), name="leader", holder="b", ttl_seconds=5, now=at(9)) is None


def test_renewal_keeps_token_and_moves_expiry() -> None:
    renewed = grant(lease(token=7), name="leader", holder="a", ttl_seconds=5, now=at(9))

    assert renewed == lease(token=7, expires=14)


@pytest.mark.parametrize("holder", ["a", "b"])
def test_grant_at_expiry_increments_token_for_anyone(holder: str) -> None:
    granted = grant(lease(token=7), name="leader", holder=holder, ttl_seconds=5, now=at(10))

    assert granted == lease(holder=holder, token=8, expires=15)


def test_grant_rejects_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl"):
        grant(None, name="leader", holder="a", ttl_seconds=0, now=T0)


def test_release_expires_the_current_term_and_keeps_token() -> None:
    assert released(lease(token=3), lease(token=3), at(4)) == lease(token=3, expires=4)


@pytest.mark.parametrize(
    "stale",
    [lease(token=2), lease(holder="b", token=3)],
    ids=["older-token", "other-holder"],
)
def test_release_of_a_stale_lease_changes_nothing(stale: Lease) -> None:
    assert released(lease(token=3), stale, at(4)) is None


def test_release_of_an_expired_lease_changes_nothing() -> None:
    assert released(lease(), lease(), at(10)) is None


def test_verify_accepts_the_live_term_whatever_its_expiry_value() -> None:
    verify(lease(token=3, expires=20), lease(token=3, expires=10), at(15))


@pytest.mark.parametrize(
    ("current", "match"),
    [
        (None, "no longer current"),
        (lease(holder="b", token=4), "no longer current"),
        (lease(token=3, expires=10), "expired"),
    ],
    ids=["never-granted", "taken-over", "expired"],
)
def test_verify_refuses_stale_leases(current: Lease | None, match: str) -> None:
    with pytest.raises(FencingError, match=match):
        verify(current, lease(token=3), at(10))
