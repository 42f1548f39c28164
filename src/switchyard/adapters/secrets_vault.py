"""Vault (or OpenBao) KV v2 behind the ``SecretStore`` port, through hvac.

Login, re-login and error mapping live in :mod:`switchyard.adapters.vault_session`, shared with
the database credential leases; see its docstring for the invariants (no credential in a repr,
an error or a log line; a timeout on every call; lazy login; one re-login for a dead AppRole
token). On top of that mapping, KV v2 adds: a deleted version -> ``NotFoundError``; a
check-and-set mismatch -> ``ConflictError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hvac.exceptions as vault_errors

from switchyard.adapters.vault_session import (
    DEFAULT_TIMEOUT_SECONDS,
    AppRoleAuth,
    TokenAuth,
    VaultAuth,
    VaultSession,
    auth_from_settings,
    dig,
    reason,
)
from switchyard.domain.secrets import Secret, SecretValue, as_secret, check_path, check_version
from switchyard.errors import ConflictError, FatalError
from switchyard.ports.secrets import SecretRegistry

# Re-exported: callers build the store's auth from this module.
__all__ = ["DEFAULT_TIMEOUT_SECONDS", "AppRoleAuth", "TokenAuth", "VaultAuth", "VaultSecretStore"]


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
        session: VaultSession | None = None,
    ) -> None:
        """``session``: log in through an existing session (one login, one token, for every
        Vault adapter of a process); ``addr``, ``auth``, ``timeout``, ``verify`` and
        ``redactor`` are then its own."""
        self._mount = mount
        self._session = session or VaultSession(
            addr, auth, timeout=timeout, verify=verify, redactor=redactor
        )

    @property
    def session(self) -> VaultSession:
        """The login this adapter uses (a credential keeper keeps its token alive)."""
        return self._session

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
        auth = auth_from_settings(
            token=token, role_id=role_id, secret_id=secret_id, approle_mount=approle_mount
        )
        return cls(addr, auth, mount=mount, timeout=timeout, redactor=redactor)

    def read(self, path: str, version: int | None = None) -> SecretValue:
        check_path(path)
        check_version(version)
        subject = self._subject(path) + ("" if version is None else f" version {version}")
        response = self._session.run(
            "reading",
            subject,
            lambda client: client.secrets.kv.v2.read_secret_version(
                path, version=version, mount_point=self._mount, raise_on_deleted_version=True
            ),
        )
        value = _parse_read(path, response)
        for secret in value.data.values():
            self._session.register(secret)
        return value

    def write(self, path: str, data: Mapping[str, str | Secret], cas: int | None = None) -> int:
        check_path(path)
        secrets = {key: as_secret(value) for key, value in data.items()}
        for secret in secrets.values():
            self._session.register(secret)
        plain = {key: secret.reveal() for key, secret in secrets.items()}
        subject = self._subject(path)

        def write(client: Any) -> object:
            try:
                return client.secrets.kv.v2.create_or_update_secret(
                    path, secret=plain, cas=cas, mount_point=self._mount
                )
            except vault_errors.InvalidRequest as exc:
                if "check-and-set" in reason(exc):
                    raise ConflictError(
                        f"vault: check-and-set mismatch writing {subject}: {reason(exc)}"
                    ) from exc
                raise

        version = dig(self._session.run("writing", subject, write), "data", "version")
        if not isinstance(version, int):
            raise FatalError(f"vault: unexpected write response for secret {path!r}")
        return version

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    def __repr__(self) -> str:
        return (
            f"VaultSecretStore(addr={self._session.addr!r}, mount={self._mount!r}, "
            f"auth={self._session.auth!r})"
        )

    def _subject(self, path: str) -> str:
        return f"secret {path!r} in mount {self._mount!r}"


def _parse_read(path: str, response: object) -> SecretValue:
    """Turn hvac's KV v2 read response into a ``SecretValue``; string values only."""
    data = dig(response, "data", "data")
    version = dig(response, "data", "metadata", "version")
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
