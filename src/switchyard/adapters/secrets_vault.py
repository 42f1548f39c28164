"""Vault (or OpenBao) KV v2 behind the ``SecretStore`` port, through hvac.

Invariants:

- No credential appears in a repr, an error message or a log line written here: tokens and
  secret ids live in :class:`~switchyard.domain.secrets.Secret` values and are revealed only
  when handed to hvac.
- Every call has a request timeout (5 s by default); hvac's errors leave this module as
  Switchyard categories: unreachable, sealed, 5xx or 429 -> ``TransientError``; 404 or a deleted
  version -> ``NotFoundError``; check-and-set mismatch -> ``ConflictError``; 403 and everything
  else -> ``FatalError``.
- Login is lazy (first call), so building the adapter never does I/O. With AppRole, a 403 whose
  token turns out to be invalid (expired, revoked) triggers one new login and one retry; a 403
  on a valid token is a policy denial and is not retried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import hvac.exceptions as vault_errors
import requests

from switchyard.domain.secrets import Secret, SecretValue, as_secret, check_path, check_version
from switchyard.errors import (
    ConfigError,
    ConflictError,
    FatalError,
    NotFoundError,
    TransientError,
)
from switchyard.ports.secrets import SecretRegistry

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 5.0

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


class VaultSecretStore:
    """KV v2 secrets at ``<mount>/data/<path>``; see the module docstring for error mapping."""

    def __init__(
        self,
        addr: str,
        auth: VaultAuth,
        *,
        mount: str = "secret",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        verify: bool | str = True,
        redactor: SecretRegistry | None = None,
    ) -> None:
        self._addr = addr
        self._auth = auth
        self._mount = mount
        self._redactor = redactor
        self._client: Any = hvac.Client(url=addr, timeout=timeout, verify=verify)
        self._login_lock = threading.Lock()
        self._token: Secret | None = None
        if redactor is not None:
            redactor.register(auth.token if isinstance(auth, TokenAuth) else auth.secret_id)

    @classmethod
    def from_settings(
        cls,
        addr: str,
        *,
        token: str | Secret | None = None,
        role_id: str | None = None,
        secret_id: str | Secret | None = None,
        approle_mount: str = "approle",
        mount: str = "secret",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        redactor: SecretRegistry | None = None,
    ) -> VaultSecretStore:
        """Build from plain settings: either ``token`` or both ``role_id`` and ``secret_id``."""
        auth: VaultAuth
        if token is not None and role_id is None and secret_id is None:
            auth = TokenAuth(as_secret(token))
        elif token is None and role_id is not None and secret_id is not None:
            auth = AppRoleAuth(role_id, as_secret(secret_id), approle_mount)
        else:
            raise ConfigError(
                "vault settings", "token", "set either token or both role_id and secret_id"
            )
        return cls(addr, auth, mount=mount, timeout=timeout, redactor=redactor)

    def read(self, path: str, version: int | None = None) -> SecretValue:
        check_path(path)
        check_version(version)
        subject = self._subject(path) + ("" if version is None else f" version {version}")
        response = self._run(
            "reading",
            subject,
            lambda client: client.secrets.kv.v2.read_secret_version(
                path, version=version, mount_point=self._mount, raise_on_deleted_version=True
            ),
        )
        value = _parse_read(path, response)
        for secret in value.data.values():
            self._register(secret)
        return value

    def write(self, path: str, data: Mapping[str, str | Secret], cas: int | None = None) -> int:
        check_path(path)
        secrets = {key: as_secret(value) for key, value in data.items()}
        for secret in secrets.values():
            self._register(secret)
        plain = {key: secret.reveal() for key, secret in secrets.items()}
        response = self._run(
            "writing",
            self._subject(path),
            lambda client: client.secrets.kv.v2.create_or_update_secret(
                path, secret=plain, cas=cas, mount_point=self._mount
            ),
        )
        version = _dig(response, "data", "version")
        if not isinstance(version, int):
            raise FatalError(f"vault: unexpected write response for secret {path!r}")
        return version

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.adapter.close()

    def __repr__(self) -> str:
        return f"VaultSecretStore(addr={self._addr!r}, mount={self._mount!r}, auth={self._auth!r})"

    def _run(self, action: str, subject: str, call: Callable[[Any], T]) -> T:
        """Call hvac with a live token, re-logging in once if an AppRole token has died."""
        with self._mapped_errors(action, subject):
            token = self._ensure_logged_in()
            try:
                return call(self._client)
            except vault_errors.Forbidden:
                if not self._token_is_dead():
                    raise
            self._relogin(token)
            return call(self._client)

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
        if isinstance(self._auth, TokenAuth):
            self._client.token = self._auth.token.reveal()
            self._token = self._auth.token
            return
        with self._mapped_errors("logging in", f"via AppRole (auth/{self._auth.mount})"):
            response = self._client.auth.approle.login(
                role_id=self._auth.role_id,
                secret_id=self._auth.secret_id.reveal(),
                mount_point=self._auth.mount,
                use_token=True,
            )
        client_token = _dig(response, "auth", "client_token")
        if not isinstance(client_token, str):
            raise FatalError(f"vault: AppRole login at auth/{self._auth.mount} returned no token")
        self._token = Secret(client_token)
        self._register(self._token)

    def _token_is_dead(self) -> bool:
        """Tell an invalid token from a policy denial: only AppRole can recover from the first."""
        if not isinstance(self._auth, AppRoleAuth):
            return False
        try:
            self._client.auth.token.lookup_self()
        except vault_errors.Forbidden:
            return True
        except (vault_errors.VaultError, requests.exceptions.RequestException):
            return False
        return False

    @contextmanager
    def _mapped_errors(self, action: str, subject: str) -> Iterator[None]:
        where = f"{subject} at {self._addr}"
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
            raise TransientError(f"vault: unavailable {action} {where}: {_reason(exc)}") from exc
        except vault_errors.InvalidRequest as exc:
            if "check-and-set" in _reason(exc):
                raise ConflictError(
                    f"vault: check-and-set mismatch {action} {subject}: {_reason(exc)}"
                ) from exc
            raise FatalError(f"vault: request refused {action} {where}: {_reason(exc)}") from exc
        except vault_errors.VaultError as exc:
            raise FatalError(f"vault: failed {action} {where}: {_reason(exc)}") from exc

    def _subject(self, path: str) -> str:
        return f"secret {path!r} in mount {self._mount!r}"

    def _register(self, secret: Secret) -> None:
        if self._redactor is not None:
            self._redactor.register(secret)


def _parse_read(path: str, response: object) -> SecretValue:
    """Turn hvac's KV v2 read response into a ``SecretValue``; string values only."""
    data = _dig(response, "data", "data")
    version = _dig(response, "data", "metadata", "version")
    if not isinstance(data, dict) or not isinstance(version, int):
        raise FatalError(f"vault: unexpected read response for secret {path!r}")
    secrets: dict[str, Secret] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            # Name the key and type only; the value may itself be sensitive.
            raise FatalError(
                f"vault: secret {path!r} key {key!r} holds {type(value).__name__}, want a string"
            )
        secrets[str(key)] = Secret(value)
    return SecretValue(path=path, version=version, data=secrets)


def _dig(document: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _reason(exc: vault_errors.VaultError) -> str:
    """The server's own error strings (never request bodies), on one line."""
    errors = exc.errors if isinstance(exc.errors, list) else [str(exc.args[0] or "")]
    return "; ".join(" ".join(str(error).split()) for error in errors) or type(exc).__name__
