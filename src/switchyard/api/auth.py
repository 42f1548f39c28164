"""Bearer tokens with roles. Tokens come from Vault; only their SHA-256 digests are kept.

Roles are ordered: viewer < operator < admin. A route needing ``operator`` accepts ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from switchyard.domain.secrets import Secret
from switchyard.errors import ConfigError


class Role(IntEnum):
    """A token's power; a higher value admits everything a lower one does."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """Who called: a role-derived name (never the token) and the role it holds."""

    name: str
    role: Role


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """Maps token digests to principals; compares in constant time."""

    def __init__(self, entries: Mapping[bytes, Principal]) -> None:
        self._entries = dict(entries)

    def __repr__(self) -> str:
        return f"TokenTable({len(self._entries)} tokens)"

    @classmethod
    def from_secret(cls, source: str, tokens: Mapping[str, Secret]) -> TokenTable:
        """``tokens`` maps a role name (viewer/operator/admin) to its token."""
        entries: dict[bytes, Principal] = {}
        for key, token in tokens.items():
            try:
                role = Role[key.upper()]
            except KeyError:
                raise ConfigError(
                    source, key, "unknown role; use viewer, operator or admin"
                ) from None
            if len(token.reveal()) < 16:
                raise ConfigError(source, key, "token shorter than 16 characters")
            entries[_digest(token.reveal())] = Principal(name=f"{role.label}-token", role=role)
        if not entries:
            raise ConfigError(source, "(keys)", "no API tokens defined")
        return cls(entries)

    def authenticate(self, presented: str) -> Principal | None:
        digest = _digest(presented)
        found = None
        for known, principal in self._entries.items():
            # Check every entry so timing does not reveal which one matched.
            if hmac.compare_digest(known, digest):
                found = principal
        return found
