"""In-memory twin of the object store, for scenario tests and local runs.

Same contract as the S3 adapter (see ``switchyard.ports.objects``); both pass
``tests/contract/test_object_store.py``. One ``InMemoryObjectStore`` is one bucket: a dict of
key -> bytes, guarded by one lock. As on S3, the etag of a plain write is the md5 of its
bytes and that of a multipart upload the md5 of its parts' md5s followed by ``-<parts>``;
every sha256 given is checked, and a mismatch stores nothing. Where it differs from S3:

- ``copy_from`` copies server-side (returns True) only from another twin created with the
  same ``location``; twins are separate buckets even when they share a location.
- An upload is never multipart: its etag is the md5 of the file.
- ``last_modified`` comes from the injected ``clock`` (default: the system's, in UTC), to the
  microsecond.

Test hooks: ``set_reachable(False)`` makes every call raise ``ObjectStoreUnavailable`` (like
an endpoint that is down, once the S3 adapter's retries are spent), and ``corrupt`` flips a
byte of a stored object without changing its size or etag (like damage the store did not
notice), so that callers' own sha256 checks can be tested.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from switchyard.errors import FatalError
from switchyard.ports.objects import (
    MIN_PART_SIZE,
    Blob,
    ChecksumMismatch,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
    PreconditionFailed,
    Progress,
    check_part_number,
    check_put,
    check_range,
    check_sha256,
)

# Progress is reported in steps of this many bytes, as an adapter reporting parts would.
_PROGRESS_STEP = 8 * 1024 * 1024
_locations = itertools.count(1)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Stored:
    data: bytes
    etag: str
    last_modified: datetime

    def info(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.data), self.etag, self.last_modified)


class InMemoryObjectStore:
    """One bucket in memory; see the module docstring for how it mirrors S3."""

    def __init__(
        self,
        bucket: str = "memory",
        *,
        location: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.bucket = bucket
        # None: a server of its own, so no other twin can copy from it server-side.
        self.location = location if location is not None else f"memory-{next(_locations)}"
        self._clock = clock  # stamps last_modified
        self._lock = threading.Lock()
        self._objects: dict[str, _Stored] = {}
        self._reachable = True

    def __repr__(self) -> str:
        return f"InMemoryObjectStore(bucket={self.bucket!r}, location={self.location!r})"

    def describe(self) -> str:
        return f"memory://{self.bucket} at {self.location}"

    # -- test hooks ---------------------------------------------------------------------------

    def set_reachable(self, reachable: bool) -> None:
        """Simulate the endpoint going away (False) or coming back (True)."""
        with self._lock:
            self._reachable = reachable

    def corrupt(self, key: str, offset: int = 0) -> None:
        """Flip the bits of the byte at ``offset`` of ``key``, keeping its recorded etag."""
        with self._lock:
            stored = self._stored(key)
            damaged = bytearray(stored.data)
            damaged[offset] ^= 0xFF
            self._objects[key] = replace(stored, data=bytes(damaged))

    # -- the port ------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            self._check_reachable()
            found = self._objects.get(key)
        return None if found is None else found.info(key)

    def get(self, key: str) -> Blob:
        with self._lock:
            stored = self._stored(key)
        return Blob(stored.data, stored.etag)

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        check_put(if_match, if_none_match)
        etag = _md5(data)
        with self._lock:
            self._check_reachable()
            current = self._objects.get(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{self.describe()}: {key} already exists")
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailed(
                    f"{self.describe()}: {key} is not at etag {if_match} (it changed)"
                )
            self._store(key, bytes(data), etag)
        return etag

    def upload(
        self, key: str, path: Path, *, sha256: str, on_progress: Progress | None = None
    ) -> None:
        digest = check_sha256(sha256)
        data = path.read_bytes()
        if hashlib.sha256(data).digest() != digest:
            raise ChecksumMismatch(f"{self.describe()}: {path} does not match its sha256")
        with self._lock:
            self._check_reachable()
            self._store(key, data, _md5(data))
        _report(on_progress, len(data))

    def download(self, key: str, path: Path, *, on_progress: Progress | None = None) -> int:
        with self._lock:
            data = self._stored(key).data
        path.write_bytes(data)
        _report(on_progress, len(data))
        return len(data)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        check_range(start, length)
        with self._lock:
            data = self._stored(key).data
        return data[start : start + length]

    def start_multipart(self, key: str) -> InMemoryMultipartUpload:
        with self._lock:
            self._check_reachable()
        return InMemoryMultipartUpload(self, key)

    def copy_from(self, source: ObjectStore, source_key: str, key: str) -> bool:
        if not isinstance(source, InMemoryObjectStore) or source.location != self.location:
            return False
        with source._lock:
            copied = source._stored(source_key)
        with self._lock:
            self._check_reachable()
            self._store(key, copied.data, copied.etag)
        return True

    def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            self._check_reachable()
            for key in keys:
                self._objects.pop(key, None)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            self._check_reachable()
            found = [
                stored.info(key) for key, stored in self._objects.items() if key.startswith(prefix)
            ]
        return iter(sorted(found, key=lambda info: info.key.encode()))

    # -- used by InMemoryMultipartUpload -------------------------------------------------------

    def _complete(self, key: str, parts: Sequence[bytes]) -> None:
        if any(len(part) < MIN_PART_SIZE for part in parts[:-1]):
            raise FatalError(
                f"{self.describe()}: EntityTooSmall completing {key}: every part but the last "
                f"must be at least {MIN_PART_SIZE} bytes"
            )
        md5s = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
        with self._lock:
            self._check_reachable()
            self._store(key, b"".join(parts), f"{_md5(md5s)}-{len(parts)}")

    def _check_reachable(self) -> None:
        if not self._reachable:
            raise ObjectStoreUnavailable(f"{self.describe()} is unreachable")

    def _store(self, key: str, data: bytes, etag: str) -> None:
        """Make ``data`` the object at ``key``; call with the lock held."""
        self._objects[key] = _Stored(data, etag, self._clock())

    def _stored(self, key: str) -> _Stored:
        """The object at ``key``; call with the lock held."""
        self._check_reachable()
        found = self._objects.get(key)
        if found is None:
            raise ObjectNotFound(f"{self.describe()}: no object {key}")
        return found


class InMemoryMultipartUpload:
    def __init__(self, store: InMemoryObjectStore, key: str) -> None:
        self.key = key
        self._store = store
        self._lock = threading.Lock()
        self._parts: dict[int, bytes] = {}
        self._finished = False

    def __repr__(self) -> str:
        return f"InMemoryMultipartUpload(key={self.key!r}, parts={len(self._parts)})"

    def put_part(self, number: int, data: bytes) -> None:
        check_part_number(number)
        with self._lock:
            self._check_open()
            with self._store._lock:
                self._store._check_reachable()
            self._parts[number] = bytes(data)

    def complete(self) -> None:
        with self._lock:
            self._check_open()
            if not self._parts:
                raise ValueError(f"{self.key}: a multipart upload needs at least one part")
            self._store._complete(self.key, [self._parts[n] for n in sorted(self._parts)])
            self._finished = True

    def abort(self) -> None:
        with self._lock:
            if self._finished:
                return
            with self._store._lock:
                self._store._check_reachable()
            self._parts.clear()
            self._finished = True

    def _check_open(self) -> None:
        if self._finished:
            raise FatalError(f"multipart upload of {self.key} is already completed or aborted")


def _report(on_progress: Progress | None, size: int) -> None:
    if on_progress is None:
        return
    for start in range(0, size, _PROGRESS_STEP):
        on_progress(min(_PROGRESS_STEP, size - start))
