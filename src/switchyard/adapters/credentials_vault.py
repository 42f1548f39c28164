"""Vault's (or OpenBao's) database secrets engine behind the ``CredentialLeases`` port.

Roles live at ``<mount>/roles/<role>``; issuing reads ``<mount>/creds/<role>``; fencing revokes
the prefix ``<mount>/creds/<role>`` (``sys/leases/revoke-prefix``, which needs ``sudo``) after
counting the live leases under it (``LIST sys/leases/lookup/...``, also ``sudo``). Revocation
is synchronous: Vault answers once every lease's revocation statements have run, so when
``revoke_role`` returns the logins are gone and, with the harness's statements, their sessions
are terminated. What a revocation does in the database is the role's ``revocation_statements``;
Vault's PostgreSQL default only revokes privileges and drops the role, leaving open sessions
running (see ``switchyard.devenv.vault``).

Renewing puts the lease id in the URL (``sys/leases/renew/<lease id>``), so a runtime's policy
can allow renewing its own role's leases and nothing else.

Errors as in :mod:`switchyard.adapters.vault_session`, plus: an unknown role ->
``NotFoundError``; renewing a revoked or expired lease -> ``NotFoundError``. A revocation that
fails because the database is unreachable (a region outage) -> ``TransientError``: Vault keeps
the leases and retries them itself, and so should the caller; one whose statements fail in the
database -> ``FatalError`` (retrying cannot help until the role is fixed).
"""

from __future__ import annotations

from typing import Any

import hvac.exceptions as vault_errors

from switchyard.adapters.vault_session import (
    DEFAULT_TIMEOUT_SECONDS,
    VaultAuth,
    VaultSession,
    auth_from_settings,
    dig,
    reason,
)
from switchyard.domain.credentials import DatabaseLease, check_role
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, NotFoundError, TransientError
from switchyard.ports.secrets import SecretRegistry

DEFAULT_MOUNT = "database"
# How the database plugin words "could not reach the database" in a failed revocation.
_UNREACHABLE = ("failed to connect", "dial error", "connection refused", "timeout")


class VaultCredentialLeases:
    """Database credentials from the engine mounted at ``mount``; see the module docstring."""

    def __init__(
        self,
        addr: str,
        auth: VaultAuth,
        *,
        mount: str = DEFAULT_MOUNT,
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
        mount: str = DEFAULT_MOUNT,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        redactor: SecretRegistry | None = None,
    ) -> VaultCredentialLeases:
        """Build from plain settings: either ``token`` or both ``role_id`` and ``secret_id``."""
        auth = auth_from_settings(
            token=token, role_id=role_id, secret_id=secret_id, approle_mount=approle_mount
        )
        return cls(addr, auth, mount=mount, timeout=timeout, redactor=redactor)

    def issue(self, role: str) -> DatabaseLease:
        check_role(role)
        subject = self._subject(role)

        def generate(client: Any) -> object:
            try:
                return client.secrets.database.generate_credentials(role, mount_point=self._mount)
            except vault_errors.InvalidRequest as exc:
                if "unknown role" in reason(exc):
                    raise NotFoundError(f"vault: {subject} not found") from exc
                raise

        response = self._session.run("issuing credentials for", subject, generate)
        lease_id = dig(response, "lease_id")
        ttl = dig(response, "lease_duration")
        username = dig(response, "data", "username")
        password = dig(response, "data", "password")
        if not (
            isinstance(lease_id, str)
            and lease_id
            and isinstance(ttl, int)
            and isinstance(username, str)
            and isinstance(password, str)
        ):
            raise FatalError(f"vault: unexpected credentials response for {subject}")
        secret = Secret(password)
        self._session.register(secret)
        return DatabaseLease(lease_id, username, secret, ttl)

    def revoke_role(self, role: str) -> int:
        check_role(role)
        subject = self._subject(role)
        # Revoking a prefix nobody issued under succeeds silently: check the role exists, so
        # a misspelt role in the topology fails fencing instead of passing it.
        self._session.run(
            "looking up",
            subject,
            lambda client: client.secrets.database.read_role(role, mount_point=self._mount),
        )
        prefix = f"{self._mount}/creds/{role}"

        def count(client: Any) -> int:
            try:
                keys = dig(client.sys.list_leases(f"{prefix}/"), "data", "keys")
            except vault_errors.InvalidPath:
                return 0  # no lease under the prefix
            return len(keys) if isinstance(keys, list) else 0

        live = self._session.run("listing leases of", subject, count)

        def revoke(client: Any) -> None:
            try:
                client.sys.revoke_prefix(prefix)
            except vault_errors.InvalidRequest as exc:
                if "failed to revoke" not in reason(exc):
                    raise
                # Vault keeps the leases and retries them on its own schedule. Worth retrying
                # here too only when the database could not be reached; a statement that
                # failed will fail again until the role's statements are fixed.
                unreachable = any(sign in reason(exc) for sign in _UNREACHABLE)
                category = TransientError if unreachable else FatalError
                raise category(
                    f"vault: revoking leases of {subject} failed in the database: {reason(exc)}"
                ) from exc

        self._session.run("revoking leases of", subject, revoke)
        return live

    def renew(self, lease: DatabaseLease) -> DatabaseLease:
        subject = f"lease {lease.lease_id!r}"

        def renew(client: Any) -> object:
            try:
                # The lease id in the path, not the body: a policy can then allow renewing
                # only its own role's leases (``sys/leases/renew/<mount>/creds/<role>/*``).
                return client.adapter.put(f"/v1/sys/leases/renew/{lease.lease_id}", json={})
            except vault_errors.InvalidRequest as exc:
                if "not found" in reason(exc):
                    raise NotFoundError(f"vault: {subject} not found (revoked or expired)") from exc
                raise

        ttl = dig(self._session.run("renewing", subject, renew), "lease_duration")
        if not isinstance(ttl, int):
            raise FatalError(f"vault: unexpected renewal response for {subject}")
        return DatabaseLease(lease.lease_id, lease.username, lease.password, ttl)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    def __repr__(self) -> str:
        return (
            f"VaultCredentialLeases(addr={self._session.addr!r}, mount={self._mount!r}, "
            f"auth={self._session.auth!r})"
        )

    def _subject(self, role: str) -> str:
        return f"database role {role!r} in mount {self._mount!r}"
