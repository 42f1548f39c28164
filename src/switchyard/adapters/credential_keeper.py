"""Credentials that last: a leased database login kept renewed, and the thread that keeps it.

:class:`LeasedLogin` holds the one database lease a runtime logs in with. The engine's
``do_connect`` asks it for the current login (:meth:`LeasedLogin.login`); the keeper thread
calls :meth:`LeasedLogin.keep_alive`, which decides with :func:`switchyard.domain.renewal.plan`
and acts:

- **renew** at 2/3 of the TTL;
- **re-issue** when a renewal was capped by the role's ``max_ttl``, or when the Vault token the
  lease was issued under has been replaced (a lease dies with its token): a new lease is
  issued, the old one is checked to be still live, then the new one becomes current and
  ``on_replaced`` runs (the engine disposes its pool: idle connections close, connections in
  use finish their request and are not reused; the old lease, live for at least a third of
  its TTL more, expires by itself later);
- **hold back** renewing and re-issuing while ``withheld()`` gives a reason (the runtime: no
  controller has probed it for a while, see ``switchyard.dialog.contact``), so an isolated
  runtime's login lapses within one TTL even though it can still reach Vault; renewal resumes
  if contact returns before the lease lapses;
- **stop** when Vault says the lease is gone (revoked by fencing, or expired), or when its TTL
  ran out locally. This is the fence: a lost lease is never replaced. :meth:`login` then
  raises ``TransientError`` (the runtime answers 503 and is not ready; its ``region_state``
  refuses writes anyway once fenced) until the process is restarted, which an operator does
  after fail-back. A re-issue never outruns a fence: if the old lease was revoked while the
  new one was being issued, the new one is dropped unused.

:class:`CredentialKeeper` is a daemon thread that runs every ``keep_alive`` (tokens and leases)
when the earliest of them is due; a failing step is logged and tried again soon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchyard.domain.credentials import DatabaseLease
from switchyard.domain.renewal import Grant, Step, plan, retry_at
from switchyard.errors import NotFoundError, TransientError
from switchyard.observability.logging import log_event
from switchyard.ports.credentials import CredentialLeases

_log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0
RETRY_SECONDS = 2.0
UNISSUED_POLL_SECONDS = 1.0
# The keeper never sleeps less than this between rounds (a step that keeps failing at once
# must not spin), nor more than IDLE_SECONDS (a new lease is noticed within that).
MIN_SLEEP_SECONDS = 0.2


@dataclass(frozen=True)
class _Held:
    lease: DatabaseLease
    grant: Grant
    token_generation: int


class LeasedLogin:
    """The current database login of one role, issued on first use; see the module docstring."""

    def __init__(
        self,
        leases: CredentialLeases,
        role: str,
        *,
        token_generation: Callable[[], int] = lambda: 0,
        on_replaced: Callable[[], None] = lambda: None,
        withheld: Callable[[], str | None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self._role = role
        self._withheld = withheld
        self._holding_back = False  # logged once per episode
        self._token_generation = token_generation
        self._on_replaced = on_replaced
        self._monotonic = monotonic
        self._lock = threading.Lock()  # guards _held and _lost
        self._issue_lock = threading.Lock()  # one issue at a time
        self._held: _Held | None = None
        self._lost: str | None = None

    @property
    def lost(self) -> str | None:
        """Why the login is gone for good (revoked, expired), or None while it works."""
        with self._lock:
            return self._lost

    @property
    def current(self) -> DatabaseLease | None:
        with self._lock:
            return None if self._held is None else self._held.lease

    def login(self) -> DatabaseLease:
        """The lease to log in with now: issued on the first call (``TransientError`` while
        Vault or the database is down; the next connection tries again); ``TransientError``
        for good once the lease is lost."""
        with self._lock:
            if self._lost is not None:
                raise TransientError(f"database login of role {self._role!r} lost: {self._lost}")
            if self._held is not None:
                return self._held.lease
        with self._issue_lock:
            with self._lock:
                if self._held is not None:
                    return self._held.lease
            held = self._issue()
            with self._lock:
                if self._held is None and self._lost is None:
                    self._held = held
                    return held.lease
            return self.login()

    def keep_alive(self) -> float:
        """One step of upkeep (renew, re-issue, or notice the loss); seconds until the next."""
        with self._lock:
            held, lost = self._held, self._lost
        if lost is not None:
            return IDLE_SECONDS
        if held is None:  # not issued yet: look again soon (no I/O until there is a lease)
            return UNISSUED_POLL_SECONDS
        now = self._monotonic()
        step = plan(held.grant, now)
        if step.step is Step.WAIT and held.token_generation == self._token_generation():
            return step.at - now
        if step.step is not Step.LAPSED and self._hold_back(held):
            return retry_at(held.grant, now, RETRY_SECONDS) - now
        try:
            if step.step is Step.LAPSED:
                self._lose(held, "its TTL ran out before it could be renewed")
            elif step.step is Step.RENEW:
                self._renew(held, now)
            else:  # capped, not renewable, or issued under a token that has been replaced
                self._replace(held)
        except TransientError as exc:
            log_event(
                _log,
                "database_lease.renewal_failed",
                level=logging.WARNING,
                role=self._role,
                lease_id=held.lease.lease_id,
                reason=str(exc),
            )
            return retry_at(held.grant, now, RETRY_SECONDS) - now
        return self._due_in()

    def _hold_back(self, held: _Held) -> bool:
        """True (and logged once) while renewing must wait; False once it may go on."""
        reason = self._withheld()
        if (reason is not None) != self._holding_back:
            self._holding_back = reason is not None
            log_event(
                _log,
                "database_lease.renewal_withheld" if reason else "database_lease.renewal_resumed",
                level=logging.WARNING if reason else logging.INFO,
                role=self._role,
                lease_id=held.lease.lease_id,
                reason=reason or "contact again",
            )
        return reason is not None

    def _due_in(self) -> float:
        with self._lock:
            held = self._held if self._lost is None else None
        if held is None:
            return IDLE_SECONDS
        now = self._monotonic()
        step = plan(held.grant, now)
        return max(0.0, step.at - now) if step.step is Step.WAIT else 0.0

    def _issue(self) -> _Held:
        before = self._token_generation()
        lease = self._leases.issue(self._role)
        # Issued under the token current before the call; if there was none yet (generation
        # 0: the session logs in lazily, inside this call), under the one it logged in with.
        # A login racing the call leaves ``before`` recorded: a needless re-issue, never a
        # missed one.
        generation = before or self._token_generation()
        log_event(
            _log,
            "database_lease.issued",
            role=self._role,
            lease_id=lease.lease_id,
            username=lease.username,
            ttl_seconds=lease.ttl_seconds,
        )
        return _Held(lease, Grant.first(self._monotonic(), lease.ttl_seconds), generation)

    def _renew(self, held: _Held, now: float) -> None:
        try:
            renewed = self._leases.renew(held.lease)
        except NotFoundError as exc:
            self._lose(held, f"Vault no longer knows it (revoked or expired): {exc}")
            return
        with self._lock:
            if self._held is held:
                self._held = _Held(
                    renewed, held.grant.renewed(now, renewed.ttl_seconds), held.token_generation
                )
        log_event(
            _log,
            "database_lease.renewed",
            level=logging.DEBUG,
            role=self._role,
            lease_id=held.lease.lease_id,
            ttl_seconds=renewed.ttl_seconds,
        )

    def _replace(self, held: _Held) -> None:
        with self._issue_lock:
            fresh = self._issue()
            # Only while the old lease provably lives: a fence that revoked it while the new
            # one was being issued must win, so the new one is dropped unused.
            try:
                self._leases.renew(held.lease)
            except NotFoundError as exc:
                self._lose(held, f"revoked while a replacement was issued: {exc}")
                return
            with self._lock:
                if self._held is not held:
                    return
                self._held = fresh
        log_event(
            _log,
            "database_lease.replaced",
            role=self._role,
            old_lease_id=held.lease.lease_id,
            lease_id=fresh.lease.lease_id,
            username=fresh.lease.username,
        )
        self._on_replaced()

    def _lose(self, held: _Held, reason: str) -> None:
        with self._lock:
            if self._held is not held:
                return
            self._lost = reason
        log_event(
            _log,
            "database_lease.lost",
            level=logging.ERROR,
            role=self._role,
            lease_id=held.lease.lease_id,
            reason=reason,
        )


class CredentialKeeper:
    """A daemon thread that runs each ``keep_alive`` step when the earliest one is due."""

    def __init__(self, name: str, steps: Sequence[Callable[[], float]]) -> None:
        self._steps = list(steps)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> CredentialKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> float:
        """Every step once; the seconds until the earliest is due again (bounded)."""
        delay = IDLE_SECONDS
        for step in self._steps:
            try:
                delay = min(delay, step())
            # Anything at all: the thread must outlive a bad step, or credentials lapse.
            except Exception as exc:
                log_event(
                    _log,
                    "credential_keeper.step_failed",
                    level=logging.ERROR,
                    reason=str(exc),
                    category=type(exc).__name__,
                )
                delay = min(delay, RETRY_SECONDS)
        return max(MIN_SLEEP_SECONDS, delay)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.run_once())
