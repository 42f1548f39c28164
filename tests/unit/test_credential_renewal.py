"""Credentials that last, on plain values and the in-memory lease twin with a fake clock:
when to renew and when to replace (``domain.renewal``), and a leased login that renews,
re-issues without a gap, and stops for good at a revocation (the fence)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchyard.adapters.credential_keeper import LeasedLogin
from switchyard.adapters.credentials_memory import InMemoryCredentialLeases
from switchyard.devenv.vault import VaultTtls, policies, process_kinds
from switchyard.domain.credentials import DatabaseLease
from switchyard.domain.renewal import Grant, Step, plan, retry_at
from switchyard.errors import ConfigError, TransientError

ROLE = "region-a-runtime"


# -- the pure schedule ---------------------------------------------------------------------


def test_a_grant_waits_until_two_thirds_of_its_ttl_then_renews() -> None:
    grant = Grant.first(100.0, 15)
    assert plan(grant, 105.0).step is Step.WAIT
    assert plan(grant, 105.0).at == pytest.approx(110.0)
    assert plan(grant, 110.0).step is Step.RENEW
    assert plan(grant.renewed(110.0, 15), 111.0).step is Step.WAIT


def test_a_capped_renewal_is_replaced_at_once_with_a_third_of_the_ttl_left() -> None:
    grant = Grant.first(0.0, 15).renewed(10.0, 5)  # max TTL 15 s: the renewal got 5 s
    step = plan(grant, 10.0)
    assert step.step is Step.REPLACE
    assert grant.expires_at - 10.0 >= 15 / 3


def test_a_lapsed_or_unrenewable_grant() -> None:
    assert plan(Grant.first(0.0, 15), 15.0).step is Step.LAPSED
    assert plan(Grant.first(0.0, 15, renewable=False), 10.0).step is Step.REPLACE
    assert plan(Grant.first(0.0, 15, renewable=False), 9.0).step is Step.WAIT


def test_a_retry_comes_before_expiry() -> None:
    grant = Grant.first(0.0, 15)
    assert retry_at(grant, 10.0, 2.0) == 12.0
    assert retry_at(grant, 14.0, 2.0) == 14.5  # half of what is left


# -- a leased login on the twin ------------------------------------------------------------


class Clock:
    """One fake time for the twin (datetime) and the login (monotonic seconds)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds

    def advance_to(self, seconds: float) -> None:
        self.seconds = seconds


class Setup:
    def __init__(self, ttl: int = 15, max_ttl: int = 40) -> None:
        self.clock = Clock()
        self.twin = InMemoryCredentialLeases(
            [ROLE], ttl_seconds=ttl, max_ttl_seconds=max_ttl, clock=self.clock.now
        )
        self.generation = 1
        self.replaced = 0
        self.login = LeasedLogin(
            self.twin,
            ROLE,
            token_generation=lambda: self.generation,
            on_replaced=self._replaced,
            monotonic=self.clock.monotonic,
        )

    def _replaced(self) -> None:
        self.replaced += 1

    def run_until(self, seconds: float) -> None:
        """Run the keeper's steps at the times it asks for, up to ``seconds``."""
        while True:
            due = self.clock.seconds + self.login.keep_alive()
            if due > seconds:
                self.clock.advance_to(seconds)
                return
            self.clock.advance_to(due)


def test_a_login_is_renewed_and_reissued_for_many_ttls_and_always_works() -> None:
    s = Setup(ttl=15, max_ttl=40)
    first = s.login.login()
    usernames = {first.username}
    for t in range(1, 200):
        s.run_until(float(t))
        lease = s.login.login()
        assert s.twin.is_live(lease), t  # never handed out a dead login
        usernames.add(lease.username)
    assert s.login.lost is None
    assert len(usernames) >= 200 // 40  # re-issued at every max TTL
    assert s.replaced == len(usernames) - 1


def test_a_new_vault_token_makes_it_reissue_under_that_token() -> None:
    s = Setup(ttl=15, max_ttl=3600)
    first = s.login.login()
    s.run_until(3.0)
    assert s.login.login() == first
    s.generation += 1  # the session logged in again: leases of the old token die with it
    s.run_until(4.0)
    assert s.login.login().username != first.username
    assert s.replaced == 1


def test_a_revoked_login_is_never_replaced() -> None:
    s = Setup(ttl=15, max_ttl=40)
    s.login.login()
    s.twin.revoke_role(ROLE)  # fencing
    s.run_until(60.0)
    assert s.login.lost is not None
    with pytest.raises(TransientError, match="lost"):
        s.login.login()
    assert s.twin.revoke_role(ROLE) == 0  # nothing was issued after the fence


def test_a_fence_during_a_reissue_wins() -> None:
    s = Setup(ttl=15, max_ttl=3600)
    s.login.login()
    fenced_after_issue = InMemoryFenceOnIssue(s.twin)
    login = LeasedLogin(
        fenced_after_issue, ROLE, token_generation=lambda: s.generation, monotonic=s.clock.monotonic
    )
    old = login.login()
    s.generation += 1  # due for a re-issue
    fenced_after_issue.armed = True
    login.keep_alive()
    assert login.lost is not None
    with pytest.raises(TransientError):
        login.login()
    assert login.current == old


class InMemoryFenceOnIssue:
    """The twin, with the role revoked right after the next issue (a fence racing a re-issue):
    the new lease was issued after the revocation's listing, so it alone survives."""

    def __init__(self, twin: InMemoryCredentialLeases) -> None:
        self._twin = twin
        self.armed = False

    def issue(self, role: str) -> DatabaseLease:
        if self.armed:
            self._twin.revoke_role(role)
        return self._twin.issue(role)

    def revoke_role(self, role: str) -> int:
        return self._twin.revoke_role(role)

    def renew(self, lease: DatabaseLease) -> DatabaseLease:
        return self._twin.renew(lease)


def test_a_lease_issued_by_the_first_login_is_not_reissued_for_it() -> None:
    s = Setup(ttl=15, max_ttl=3600)
    s.generation = 0  # the Vault session logs in lazily, inside the first issue
    twin_issue = s.twin.issue

    def issue_logging_in(role: str) -> DatabaseLease:
        s.generation = 1
        return twin_issue(role)

    s.twin.issue = issue_logging_in  # type: ignore[method-assign]
    first = s.login.login()
    s.run_until(30.0)
    assert s.login.login().lease_id == first.lease_id  # renewed, never re-issued
    assert s.replaced == 0


def test_renewal_is_withheld_without_contact_so_an_isolated_login_lapses() -> None:
    s = Setup(ttl=15, max_ttl=3600)
    in_touch = [True]
    login = LeasedLogin(
        s.twin,
        ROLE,
        token_generation=lambda: 1,
        withheld=lambda: None if in_touch[0] else "no controller has probed it",
        monotonic=s.clock.monotonic,
    )
    s.login = login
    first = login.login()
    s.run_until(20.0)
    assert login.lost is None  # renewed while in touch
    assert s.twin.is_live(first)
    in_touch[0] = False
    s.run_until(60.0)  # longer than a TTL without contact
    assert not s.twin.is_live(first)
    assert login.lost is not None
    in_touch[0] = True  # contact again: the lost login stays lost
    s.run_until(90.0)
    with pytest.raises(TransientError):
        login.login()
    assert s.twin.revoke_role(ROLE) == 0  # nothing issued meanwhile


def test_renewal_resumes_when_contact_returns_before_the_login_lapses() -> None:
    s = Setup(ttl=15, max_ttl=3600)
    in_touch = [False]
    login = LeasedLogin(
        s.twin,
        ROLE,
        token_generation=lambda: 1,
        withheld=lambda: None if in_touch[0] else "no controller has probed it",
        monotonic=s.clock.monotonic,
    )
    s.login = login
    first = login.login()
    s.run_until(12.0)  # renewal due at 10 s, held back
    in_touch[0] = True
    s.run_until(100.0)
    assert login.lost is None
    assert s.twin.is_live(first)


def test_a_login_not_yet_issued_is_looked_at_again_soon_without_io() -> None:
    s = Setup()
    assert s.login.keep_alive() <= 1.0
    assert s.twin.revoke_role(ROLE) == 0


# -- the harness's Vault setup -------------------------------------------------------------


def test_ttls_come_from_the_environment_and_bad_ones_are_named() -> None:
    ttls = VaultTtls.from_env(
        {"SWITCHYARD_DEV_VAULT_LEASE_TTL": "15s", "SWITCHYARD_DEV_VAULT_TOKEN_MAX_TTL": "2m"}
    )
    assert (ttls.lease_ttl, ttls.lease_max_ttl, ttls.token_max_ttl) == ("15s", "24h", "2m")
    with pytest.raises(ConfigError, match="SWITCHYARD_DEV_VAULT_TOKEN_TTL"):
        VaultTtls.from_env({"SWITCHYARD_DEV_VAULT_TOKEN_TTL": "soon"})


def test_only_the_controller_may_revoke_and_no_runtime_reads_another_regions_paths() -> None:
    by_kind = policies()
    assert set(by_kind) == set(process_kinds())
    assert [k for k, p in by_kind.items() if "revoke-prefix" in p] == ["controller"]
    assert [k for k, p in by_kind.items() if '"database/creds/region-a-runtime"' in p] == [
        "runtime-region-a"
    ]
    for kind, policy in by_kind.items():
        assert 'switchyard/api-tokens"' not in policy or kind == "api", kind
        assert "dns/" not in policy or kind == "controller", kind
