"""The secret store port: versioned key/value secrets with compare-and-set writes.

Kept to two methods on purpose. Database dynamic credentials and lease renew/revoke are a
different concern (leases expire, are revoked at fencing) and get their own port later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from switchyard.domain.secrets import Secret, SecretValue


class SecretStore(Protocol):
    """Versioned secrets addressed by a path such as ``"switchyard/dns/tsig"``.

    Contract (the suite in ``tests/contract/test_secret_store.py`` checks every adapter):

    - Versions of a path start at 1 and grow by one with every write.
    - ``read(path)`` returns the latest version; ``read(path, version)`` that exact version.
      ``NotFoundError`` for a missing path or a missing (or deleted) version; the message names
      the path, never a value.
    - ``write(path, data, cas)`` returns the new version. With ``cas`` it writes only if the
      current version equals ``cas`` (``0`` means "only if the path has no version yet"),
      otherwise ``ConflictError``.
    - Unreachable server: ``TransientError``; permission denied: ``FatalError``.
    - Paths are checked by ``switchyard.domain.secrets.check_path`` (``ValueError``), and
      versions below 1 are refused with ``ValueError``.
    """

    def read(self, path: str, version: int | None = None) -> SecretValue: ...

    def write(self, path: str, data: Mapping[str, str | Secret], cas: int | None = None) -> int: ...


class SecretRegistry(Protocol):
    """Told about every secret a store hands out or accepts, so logs can mask its value.

    ``switchyard.observability.logging.Redactor`` implements it. Adapters take one as an
    optional constructor argument; they never import logging.
    """

    def register(self, secret: Secret) -> None: ...
