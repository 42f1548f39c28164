"""In-memory twin of the secret store, for scenario tests and local runs.

Same contract as the Vault adapter (see ``switchyard.ports.secrets.SecretStore``). It keeps every
version forever, where Vault keeps ``max_versions`` (10 by default) per path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from switchyard.domain.secrets import Secret, SecretValue, as_secret, check_path, check_version
from switchyard.errors import ConflictError, NotFoundError
from switchyard.ports.secrets import SecretRegistry


class InMemorySecretStore:
    """Every version of every path in a dict; one lock makes each call atomic.

    Invariant: ``self._versions[path][n - 1]`` is version ``n`` of ``path``; lists only grow.
    """

    def __init__(self, *, redactor: SecretRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[Mapping[str, Secret]]] = {}
        self._redactor = redactor

    def read(self, path: str, version: int | None = None) -> SecretValue:
        check_path(path)
        check_version(version)
        with self._lock:
            versions = self._versions.get(path)
            if not versions:
                raise NotFoundError(f"secret {path!r} not found")
            wanted = len(versions) if version is None else version
            if wanted > len(versions):
                raise NotFoundError(f"secret {path!r} has no version {version}")
            value = SecretValue(path=path, version=wanted, data=versions[wanted - 1])
        self._register(value.data.values())
        return value

    def write(self, path: str, data: Mapping[str, str | Secret], cas: int | None = None) -> int:
        check_path(path)
        secrets = {key: as_secret(value) for key, value in data.items()}
        self._register(secrets.values())
        with self._lock:
            versions = self._versions.get(path, [])
            if cas is not None and cas != len(versions):
                raise ConflictError(
                    f"secret {path!r}: check-and-set expected version {cas}, "
                    f"current is {len(versions)}"
                )
            versions.append(secrets)
            self._versions[path] = versions
            return len(versions)

    def _register(self, secrets: Iterable[Secret]) -> None:
        if self._redactor is None:
            return
        for secret in secrets:
            self._redactor.register(secret)

    def __repr__(self) -> str:
        return f"InMemorySecretStore(paths={len(self._versions)})"
