"""The object store index snapshots travel through: one bucket of keyed, immutable blobs (S3).

Adapters: ``adapters/objects_s3.py`` (boto3; SeaweedFS in the harness, AWS in production) and
``adapters/objects_memory.py`` (twin). Both pass ``tests/contract/test_object_store.py``.

Contract:

- A key holds one object or none; writes replace it whole and readers never see a mix. The
  ``etag`` identifies one version of an object (S3's quotes stripped); compare etags for
  equality only.
- Integrity: every write carries the sha256 of its bytes and the store refuses bytes that do
  not match (``ChecksumMismatch``); nothing becomes visible at the key then. ``upload`` is
  given the digest of the whole file; a multipart upload also sends one per part, and the
  adapter checks the whole-file digest itself before completing.
- ``put`` is the one conditional write: ``if_none_match`` creates only (a manifest),
  ``if_match`` is compare-and-set on the etag (the ``latest`` pointer); a condition that does
  not hold, including ``if_match`` on a missing key, raises ``PreconditionFailed`` and changes
  nothing.
- ``download`` writes exactly the object's bytes to the path the caller chose (a staging
  path: a failed download leaves a partial file there) and returns the size; if the object
  changes while it is read, it raises ``PreconditionFailed``; a transfer that breaks is
  resumed, and one the store ends early without an error raises ``ChecksumMismatch``. It
  does not know the sha256: callers verify what they download against their manifest.
- ``copy_from`` copies inside the store's server when it can (same server and credentials)
  and returns True; it returns False, having done nothing, when the caller must stream the
  bytes instead (``read_range`` + ``start_multipart``).
- ``list`` yields every object under a prefix in key order (UTF-8 byte order), across pages.
  ``delete`` is idempotent: a missing key is no error.
- Errors: a missing object raises ``ObjectNotFound`` (``head`` returns None instead); a
  server that stays unreachable, or keeps answering 5xx or "slow down", after the adapter's
  own retries raises ``ObjectStoreUnavailable``; anything else the store refuses raises
  ``FatalError``. Messages name the store (``describe()``), never a credential.
- Progress callbacks get byte counts (deltas) as parts or chunks complete, possibly from
  worker threads, so they must be thread-safe; the deltas of a call that succeeds add up to
  the object's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from switchyard.errors import ConflictError, FatalError, NotFoundError, TransientError

Progress = Callable[[int], None]
"""Called with the number of bytes just transferred (a delta), possibly from worker threads."""

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part: every part of a multipart upload but the last must be at least this."""
MAX_PARTS = 10_000
"""S3's largest part number."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime
    """When the current version was written (timezone-aware, UTC; S3 keeps whole seconds)."""


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    etag: str


class ObjectNotFound(NotFoundError):  # noqa: N818 - named for what happened
    """No object at the key (or, for a copy, at the source key)."""


class PreconditionFailed(ConflictError):  # noqa: N818 - named for what happened
    """A conditional write's condition did not hold, or an object changed while read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="precondition_failed")


class ChecksumMismatch(FatalError):  # noqa: N818 - named for what happened
    """Bytes did not match their sha256 (the store refused them, or the adapter saw it), or
    fewer bytes arrived than the store announced."""

    code = "checksum_mismatch"


class ObjectStoreUnavailable(TransientError):  # noqa: N818 - named for what happened
    """The store did not answer (or answered 5xx) through every retry; names the endpoint and
    bucket, never a credential."""

    code = "object_store_unavailable"


class MultipartUpload(Protocol):
    """One multipart upload, to stream an object in part by part without a temporary file.

    Parts may be put from several threads, in any order; ``complete`` assembles them by part
    number. Every part but the last must be at least ``MIN_PART_SIZE`` bytes (``complete``
    raises ``FatalError`` otherwise). Until ``complete`` nothing is visible at the key; after
    ``abort`` nothing of the upload remains. A failed caller must ``abort``.
    """

    key: str

    def put_part(self, number: int, data: bytes) -> None:
        """Store part ``number`` (1 to ``MAX_PARTS``) with its sha256; putting a number again
        replaces that part."""
        ...

    def complete(self) -> None:
        """Make the parts, in number order, the object at ``key`` (at least one part)."""
        ...

    def abort(self) -> None:
        """Discard the parts; idempotent."""
        ...


class ObjectStore(Protocol):
    def describe(self) -> str:
        """Where this store is, for messages ("s3://bucket at http://host:port"); no secret."""
        ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def get(self, key: str) -> Blob:
        """A small object read whole into memory."""
        ...

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Write a small object; returns its new etag. ``if_match``: only if the current etag
        is this one; ``if_none_match``: only if no object exists (not both)."""
        ...

    def upload(
        self, key: str, path: Path, *, sha256: str, on_progress: Progress | None = None
    ) -> None:
        """Write the file at ``path``, whose hex sha256 is ``sha256``, to ``key``."""
        ...

    def download(self, key: str, path: Path, *, on_progress: Progress | None = None) -> int:
        """Write the object to ``path`` (created or truncated); returns its size."""
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from offset ``start``: fewer at the end of the object, none
        from ``start`` at or past it."""
        ...

    def start_multipart(self, key: str) -> MultipartUpload: ...

    def copy_from(self, source: ObjectStore, source_key: str, key: str) -> bool:
        """Copy ``source_key`` of ``source`` to ``key`` here inside the server if possible."""
        ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...


# Argument checks both adapters share, so a caller bug fails the same way on each.


def check_sha256(sha256: str) -> bytes:
    """The digest of a 64-digit hex sha256; ``ValueError`` (a caller bug) for anything else."""
    if len(sha256) != 64:
        raise ValueError(f"sha256 must be 64 hex digits, got {len(sha256)} characters")
    try:
        return bytes.fromhex(sha256)
    except ValueError:
        raise ValueError("sha256 must be 64 hex digits") from None


def check_range(start: int, length: int) -> None:
    if start < 0 or length < 1:
        raise ValueError(f"invalid range: start {start} (>= 0), length {length} (>= 1)")


def check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise ValueError(f"part number must be 1 to {MAX_PARTS}, got {number}")


def check_put(if_match: str | None, if_none_match: bool) -> None:
    if if_match is not None and if_none_match:
        raise ValueError("put takes if_match or if_none_match, not both")
