"""The credential leases port: database logins issued per role, renewed, and revoked at fencing.

Fencing a region revokes every lease issued under its runtime's role, so the old primary can
neither log in again nor keep using the connections it already holds.
"""

from __future__ import annotations

from typing import Protocol

from switchyard.domain.credentials import DatabaseLease

UNCOUNTED = -1
"""What ``revoke_role`` returns when the adapter cannot count the leases it revoked."""


class CredentialLeases(Protocol):
    """Database logins leased under a role such as ``"region-a-runtime"``.

    Contract (the suite in ``tests/contract/test_credential_leases.py`` checks every adapter):

    - ``issue(role)`` returns a new lease: a username and password that can log in now, valid
      for ``ttl_seconds`` unless renewed or revoked. Every call issues a distinct username.
    - ``revoke_role(role)`` revokes every lease issued under ``role`` and returns how many were
      live just before (``UNCOUNTED``, -1, when the adapter cannot tell). When it returns, a
      revoked login can no longer log in and its open sessions have been ended. Idempotent:
      with nothing live it does nothing and returns 0. Leases issued afterwards are new
      leases and are live. If the database cannot be reached the leases stay live and it
      raises ``TransientError`` (retry; the engine retries too); if the revocation fails in
      the database for another reason, ``FatalError``.
    - ``renew(lease)`` extends a live lease and returns it with the TTL now granted (which may
      be shorter than asked when the role's maximum TTL nears); ``NotFoundError`` for a lease
      that was revoked or has expired.
    - Unknown role (``issue`` or ``revoke_role``): ``NotFoundError`` naming the role, so a
      misspelt role never makes fencing look successful. Unreachable server:
      ``TransientError``; permission denied: ``FatalError``.
    - Role names are checked by ``switchyard.domain.credentials.check_role`` (``ValueError``).
    - Passwords are ``Secret`` values, registered with the adapter's ``SecretRegistry`` if it
      has one, and never appear in a repr, an error message or a log line.
    """

    def issue(self, role: str) -> DatabaseLease: ...

    def revoke_role(self, role: str) -> int: ...

    def renew(self, lease: DatabaseLease) -> DatabaseLease: ...
