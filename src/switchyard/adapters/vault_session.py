"""One logged-in hvac client, shared by every Vault (or OpenBao) adapter.

The KV secret store and the database credential leases talk to the same server with the same
login; this module holds what they share: how to log in (a token or AppRole), when to log in
again, and how hvac's errors become Switchyard categories.

Invariants:

- No credential appears in a repr, an error message or a log line written here: tokens and
  secret ids live in :class:`~switchyard.domain.secrets.Secret` values and are revealed only
  when handed to hvac.
- Every call has a request timeout (5 s by default); hvac's errors leave :meth:`VaultSession.run`
  as Switchyard categories: unreachable, sealed, 5xx or 429 -> ``TransientError``; 404 ->
  ``NotFoundError``; 403 and everything else -> ``FatalError``. An adapter that can tell more
  from a 400 (a check-and-set mismatch, an unknown role) catches ``InvalidRequest`` inside its
  call and raises the finer category itself; Switchyard errors pass through unchanged.
- Login is lazy (first call), so building a session never does I/O. With AppRole, a 403 whose
  token turns out to be invalid (expired, revoked) triggers one new login and one retry; a 403
  on a valid token is a policy denial and is not retried.
- The token is kept alive by whoever calls :meth:`VaultSession.keep_alive` (the process's
  credential keeper): renewed (``renew-self``) at 2/3 of its TTL, replaced by a new login when
  a renewal is capped by the role's ``token_max_ttl`` or the token lapsed. Leases issued with a
  token die with it, so every login bumps :attr:`VaultSession.token_generation`, which lease
  holders watch to re-issue under the new token while the old one still lives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import hvac.exceptions as vault_errors
import requests

from switchyard.domain.renewal import Grant, Step, plan, retry_at
from switchyard.domain.secrets import Secret, as_secret
from switchyard.errors import ConfigError, FatalError, NotFoundError, TransientError
from switchyard.ports.secrets import SecretRegistry

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 5.0
# How long ``keep_alive`` has nothing to do for a token that never expires (or a fixed one).
IDLE_SECONDS = 30.0
# After a failed renewal or login: try again this soon (sooner if the token expires first).
RETRY_SECONDS = 2.0

_TRANSIENT_STATUS = (
    vault_errors.RateLimitExceeded,
    vault_errors.InternalServerError,
    vault_errors.BadGateway,
    vault_errors.VaultDown,
)


@dataclass(frozen=True)
class TokenAuth:
    """Authenticate with a fixed token (tests, break-glass). Never re-logs in."""

    token: Secret


@dataclass(frozen=True)
class AppRoleAuth:
    """Authenticate with AppRole at ``auth/<mount>``; logs in again when the token dies."""

    role_id: str
    secret_id: Secret
    mount: str = "approle"


VaultAuth = TokenAuth | AppRoleAuth


def auth_from_settings(
    *,
    token: str | Secret | None = None,
    role_id: str | None = None,
    secret_id: str | Secret | None = None,
    approle_mount: str = "approle",
) -> VaultAuth:
    """Either ``token`` or both ``role_id`` and ``secret_id``; ``ConfigError`` otherwise."""
    if token is not None and role_id is None and secret_id is None:
        return TokenAuth(as_secret(token))
    if token is None and role_id is not None and secret_id is not None:
        return AppRoleAuth(role_id, as_secret(secret_id), approle_mount)
    raise ConfigError("vault settings", "token", "set either token or both role_id and secret_id")


class VaultSession:
    """An hvac client plus the login it needs; adapters call Vault through :meth:`run`."""

    def __init__(
        self,
        addr: str,
        auth: VaultAuth,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        verify: bool | str = True,
        redactor: SecretRegistry | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.addr = addr
        self.auth = auth
        self._redactor = redactor
        self._monotonic = monotonic
        self._client: Any = hvac.Client(url=addr, timeout=timeout, verify=verify)
        self._login_lock = threading.Lock()
        self._token: Secret | None = None
        self._grant: Grant | None = None  # None: a fixed token, or one that never expires
        self._generation = 0
        self.register(auth.token if isinstance(auth, TokenAuth) else auth.secret_id)

    def run(self, action: str, subject: str, call: Callable[[Any], T]) -> T:
        """``call(client)`` with a live token, re-logging in once if an AppRole token has died.

        ``action`` and ``subject`` word the error messages ("reading", "secret 'a/b'"); they
        must not contain secret values.
        """
        with self.mapped_errors(action, subject):
            token = self._ensure_logged_in()
            try:
                return call(self._client)
            except vault_errors.Forbidden:
                if not self._token_is_dead():
                    raise
            self._relogin(token)
            return call(self._client)

    @property
    def token_generation(self) -> int:
        """How many times this session has logged in; a lease issued under generation N dies
        with that token."""
        with self._login_lock:
            return self._generation

    def keep_alive(self) -> float:
        """One step of token upkeep; returns the seconds until the next step is due.

        Logs in if not yet logged in; renews the token at 2/3 of its TTL; logs in again when a
        renewal was capped (``token_max_ttl`` near), the token is not renewable, or it lapsed
        or was revoked. An unreachable Vault is retried (``RETRY_SECONDS``, before expiry);
        a refused login raises ``FatalError`` (the caller logs it and calls again later).
        A fixed token (``TokenAuth``) is left alone.
        """
        if isinstance(self.auth, TokenAuth):
            return IDLE_SECONDS
        with self._login_lock:
            token, grant = self._token, self._grant
        now = self._monotonic()
        try:
            if token is None:
                self._ensure_logged_in()
                return self._due_in()
            if grant is None:
                return IDLE_SECONDS
            step = plan(grant, now)
            if step.step is Step.WAIT:
                return step.at - now
            if step.step is Step.RENEW and self._renew_token(token, grant, now):
                return self._due_in()
            self._relogin(token)
        except TransientError:
            return RETRY_SECONDS if grant is None else retry_at(grant, now, RETRY_SECONDS) - now
        return self._due_in()

    def _renew_token(self, token: Secret, grant: Grant, now: float) -> bool:
        """Renew ``token``; False when it turned out dead (the caller logs in again)."""
        try:
            with self.mapped_errors("renewing", "the session token"):
                response = self._client.auth.token.renew_self()
        except FatalError:
            if self._token_is_dead():
                return False
            raise
        ttl = dig(response, "auth", "lease_duration")
        if not isinstance(ttl, int):
            raise FatalError(f"vault: unexpected token renewal response from {self.addr}")
        with self._login_lock:
            if self._token is token:
                self._grant = grant.renewed(now, ttl)
        return True

    def _due_in(self) -> float:
        with self._login_lock:
            grant = self._grant
        if grant is None:
            return IDLE_SECONDS
        step = plan(grant, self._monotonic())
        return max(0.0, step.at - self._monotonic()) if step.step is Step.WAIT else 0.0

    def register(self, secret: Secret) -> None:
        """Tell the redactor (if any) about a secret this session or its adapter handles."""
        if self._redactor is not None:
            self._redactor.register(secret)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.adapter.close()

    def __repr__(self) -> str:
        return f"VaultSession(addr={self.addr!r}, auth={self.auth!r})"

    def _ensure_logged_in(self) -> Secret | None:
        with self._login_lock:
            if self._token is None:
                self._login()
            return self._token

    def _relogin(self, stale: Secret | None) -> None:
        with self._login_lock:
            # Another thread may have replaced the stale token while we waited.
            if self._token is stale:
                self._login()

    def _login(self) -> None:
        """Put a token on the client. Caller holds ``_login_lock``."""
        if isinstance(self.auth, TokenAuth):
            self._client.token = self.auth.token.reveal()
            self._token = self.auth.token
            return
        with self.mapped_errors("logging in", f"via AppRole (auth/{self.auth.mount})"):
            response = self._client.auth.approle.login(
                role_id=self.auth.role_id,
                secret_id=self.auth.secret_id.reveal(),
                mount_point=self.auth.mount,
                use_token=True,
            )
        client_token = dig(response, "auth", "client_token")
        if not isinstance(client_token, str):
            raise FatalError(f"vault: AppRole login at auth/{self.auth.mount} returned no token")
        ttl = dig(response, "auth", "lease_duration")
        renewable = dig(response, "auth", "renewable")
        self._token = Secret(client_token)
        self._generation += 1
        self._grant = (
            Grant.first(self._monotonic(), ttl, renewable=renewable is True)
            if isinstance(ttl, int) and ttl > 0
            else None
        )
        self.register(self._token)

    def _token_is_dead(self) -> bool:
        """Tell an invalid token from a policy denial: only AppRole can recover from the first."""
        if not isinstance(self.auth, AppRoleAuth):
            return False
        try:
            self._client.auth.token.lookup_self()
        except vault_errors.Forbidden:
            return True
        except (vault_errors.VaultError, requests.exceptions.RequestException):
            return False
        return False

    @contextmanager
    def mapped_errors(self, action: str, subject: str) -> Iterator[None]:
        """Turn hvac's and requests' errors raised in the block into Switchyard categories."""
        where = f"{subject} at {self.addr}"
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise FatalError(f"vault: TLS failed {action} {where}") from exc
        except requests.exceptions.RequestException as exc:
            raise TransientError(
                f"vault: unreachable {action} {where}: {type(exc).__name__}"
            ) from exc
        except vault_errors.InvalidPath as exc:
            raise NotFoundError(f"vault: {subject} not found") from exc
        except vault_errors.Forbidden as exc:
            raise FatalError(f"vault: permission denied {action} {where}") from exc
        except _TRANSIENT_STATUS as exc:
            raise TransientError(f"vault: unavailable {action} {where}: {reason(exc)}") from exc
        except vault_errors.InvalidRequest as exc:
            raise FatalError(f"vault: request refused {action} {where}: {reason(exc)}") from exc
        except vault_errors.VaultError as exc:
            raise FatalError(f"vault: failed {action} {where}: {reason(exc)}") from exc


def dig(document: object, *keys: str) -> object:
    """``document[k1][k2]...`` through nested dicts; None where a level is missing."""
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def reason(exc: vault_errors.VaultError) -> str:
    """The server's own error strings (never request bodies), on one line."""
    errors = exc.errors if isinstance(exc.errors, list) else [str(exc.args[0] or "")]
    return "; ".join(" ".join(str(error).split()) for error in errors) or type(exc).__name__
