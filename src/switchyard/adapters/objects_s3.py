"""An S3 bucket behind the ``ObjectStore`` port, through boto3 (SeaweedFS in the harness).

Same contract as the twin (see ``switchyard.ports.objects``); both pass
``tests/contract/test_object_store.py``. How it meets it:

- Integrity: ``put``, single-request uploads and every part send ``x-amz-checksum-sha256``,
  which the server verifies (BadDigest -> ``ChecksumMismatch``). A multipart upload hashes
  the file once, in order, while its parts go out, and aborts instead of completing when the
  whole-file digest differs from the one given. ``get`` asks for the stored checksum, and
  botocore checks it where the server has one (objects written by ``put``).
- Because those checksums are signed headers, request bodies are sent as UNSIGNED-PAYLOAD
  (``payload_signing_enabled=False``): signing them as well would hash every byte a second
  time, which costs ~10% of upload throughput on two cores. botocore's own CRC32 checksums
  are off (``when_required``) for the same reason.
- Transfers: files above ``multipart_threshold`` go as parts of ``part_size`` (grown to fit
  within 10,000 parts), ``concurrency`` at a time; any failure aborts the upload. Downloads
  are ranged GETs of ``range_size``, ``concurrency`` at a time, each pinned to the first
  response's etag (If-Match) and written with ``os.pwrite`` into a file preallocated to the
  object's size; a range whose stream breaks resumes from its last byte written.
- Retries are ours, not botocore's (one attempt each): connection failures, timeouts, broken
  streams, 5xx and throttling are retried ``attempts`` times in all, with exponential backoff
  and jitter through the injected ``sleep``, then raise ``ObjectStoreUnavailable``. A
  conditional ``put``, or a ``complete``, whose retry finds its condition failed (or its
  upload gone) checks whether the earlier attempt was applied after all before failing.
- ``copy_from`` copies server-side (CopyObject) from another ``S3ObjectStore`` at the same
  endpoint with the same credentials, for objects up to 5 GiB (the single-request limit; a
  larger one returns False, for the caller to stream). The copy carries no checksum on
  SeaweedFS (AWS computes a new one).
- Credentials are :class:`~switchyard.domain.secrets.Secret` values revealed only to build
  the client, on first use (constructing the store does no I/O). Messages and the repr name
  the endpoint and bucket only; server messages are left out (they may echo a key id).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, SwitchyardError
from switchyard.ports.objects import (
    MAX_PARTS,
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

T = TypeVar("T")

MiB = 1024 * 1024
MAX_COPY_SIZE = 5 * 1024 * MiB
"""The largest object one CopyObject request copies."""
_DELETE_BATCH = 1000  # DeleteObjects' limit
_CHUNK = MiB  # bytes read from a response stream per pwrite

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_BAD_CHECKSUM = frozenset({"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"})
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
    }
)


@dataclass(frozen=True, repr=False)
class _Location:
    """Who and where: two stores with equal locations can copy server-side. The secret is
    compared in constant time (``Secret.__eq__``) and never shown."""

    endpoint_url: str | None
    region_name: str
    access_key_id: str
    secret_access_key: Secret


class S3ObjectStore:
    """One bucket; see the module docstring for integrity, transfers and retries."""

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        *,
        access_key_id: str,
        secret_access_key: Secret,
        region_name: str = "us-east-1",
        multipart_threshold: int = 16 * MiB,
        part_size: int = 16 * MiB,
        range_size: int = 32 * MiB,
        concurrency: int = 8,
        page_size: int = 1000,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        attempts: int = 4,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if part_size < MIN_PART_SIZE or multipart_threshold < MIN_PART_SIZE:
            raise ValueError(f"part_size and multipart_threshold must be >= {MIN_PART_SIZE}")
        if range_size < 1 or concurrency < 1 or attempts < 1 or not 1 <= page_size <= 1000:
            raise ValueError("range_size, concurrency and attempts >= 1; page_size 1 to 1000")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._location = _Location(endpoint_url, region_name, access_key_id, secret_access_key)
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._range_size = range_size
        self._concurrency = concurrency
        self._page_size = page_size
        self._timeouts = (connect_timeout, read_timeout)
        self._attempts = attempts
        self._backoff = (backoff, max_backoff)
        self._sleep = sleep
        self._client_lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return (
            f"S3ObjectStore(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
            f"region_name={self.region_name!r})"
        )

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region_name}"
        return f"s3://{self.bucket} at {where}"

    # -- small objects -------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        try:
            found = self._call(
                f"reading {key}", lambda c: c.head_object(Bucket=self.bucket, Key=key)
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key, int(found["ContentLength"]), _etag(found["ETag"]), _utc(found["LastModified"])
        )

    def get(self, key: str) -> Blob:
        def attempt(client: Any) -> Blob:
            found = client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            return Blob(found["Body"].read(), _etag(found["ETag"]))

        return self._call(f"reading {key}", attempt)

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        check_put(if_match, if_none_match)
        conditions: dict[str, str] = {}
        if if_match is not None:
            conditions["IfMatch"] = f'"{if_match}"'
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        checksum = _b64(hashlib.sha256(data).digest())
        tries = 0

        def attempt(client: Any) -> str:
            nonlocal tries
            tries += 1
            sent = client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=checksum, **conditions
            )
            return _etag(sent["ETag"])

        try:
            return self._call(f"writing {key}", attempt)
        except (PreconditionFailed, ObjectNotFound) as exc:
            if not conditions:
                raise
            if tries > 1:
                # An earlier attempt may have been applied and only its answer lost.
                current = self._get_or_none(key)
                if current is not None and current.data == data:
                    return current.etag
            if isinstance(exc, PreconditionFailed):
                raise
            # AWS answers If-Match on a missing key with 404; the port says precondition.
            raise PreconditionFailed(f"{self.describe()}: {key} does not exist") from exc

    def read_range(self, key: str, start: int, length: int) -> bytes:
        check_range(start, length)

        def attempt(client: Any) -> bytes:
            found = self._ranged(client, key, start, start + length - 1)
            return b"" if found is None else bytes(found["Body"].read())

        return self._call(f"reading {key}", attempt)

    # -- files ---------------------------------------------------------------------------------

    def upload(
        self, key: str, path: Path, *, sha256: str, on_progress: Progress | None = None
    ) -> None:
        digest = check_sha256(sha256)
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size <= self._multipart_threshold:
                data = file.read()
                self._call(
                    f"uploading {key}",
                    lambda c: c.put_object(
                        Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=_b64(digest)
                    ),
                )
                if on_progress is not None:
                    on_progress(len(data))
                return
            part_size = max(self._part_size, math.ceil(size / MAX_PARTS))
            upload = self.start_multipart(key)
            try:
                self._upload_parts(upload, file.fileno(), size, part_size, digest, on_progress)
                upload.complete()
            except BaseException:
                _abort_quietly(upload)
                raise

    def _upload_parts(
        self,
        upload: S3MultipartUpload,
        fd: int,
        size: int,
        part_size: int,
        digest: bytes,
        on_progress: Progress | None,
    ) -> None:
        """Read the file in order, hashing it whole, and hand its parts to ``concurrency``
        workers; at most ``concurrency`` parts are in memory at once."""
        whole = hashlib.sha256()
        slots = threading.Semaphore(self._concurrency)
        failed = threading.Event()

        def send(number: int, data: bytes) -> None:
            try:
                upload.put_part(number, data)
                if on_progress is not None:
                    on_progress(len(data))
            except BaseException:
                failed.set()
                raise
            finally:
                slots.release()

        with _Workers(self._concurrency) as workers:
            for number, offset in enumerate(range(0, size, part_size), start=1):
                slots.acquire()
                if failed.is_set():
                    break
                data = os.pread(fd, part_size, offset)
                if len(data) != min(part_size, size - offset):
                    raise FatalError(f"{upload.key}: the file changed size while uploading")
                whole.update(data)
                workers.submit(send, number, data)
            else:  # every part read: refuse a wrong file before waiting for the last parts
                if whole.digest() != digest:
                    raise ChecksumMismatch(
                        f"{self.describe()}: file for {upload.key} does not match its sha256"
                    )
            workers.join()

    def download(self, key: str, path: Path, *, on_progress: Progress | None = None) -> int:
        # The first range also tells the size and etag, so small objects take one request.
        first = self._call(
            f"downloading {key}", lambda c: self._ranged(c, key, 0, self._range_size - 1)
        )
        if first is None:  # the range was unsatisfiable: an empty object (or none)
            info = self.head(key)
            if info is None:
                raise ObjectNotFound(f"{self.describe()}: no object {key}")
            if info.size:
                raise PreconditionFailed(f"{self.describe()}: {key} changed while downloading")
            path.write_bytes(b"")
            return 0
        size = _total_size(first)
        etag = _etag(first["ETag"])
        ranges = [
            (start, min(start + self._range_size, size) - 1)
            for start in range(0, size, self._range_size)
        ]
        stop = threading.Event()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _preallocate(fd, size)
            if len(ranges) == 1:  # no pool for the many small files
                self._fetch(fd, key, etag, 0, size - 1, first["Body"], on_progress, stop)
                return size
            with _Workers(min(self._concurrency, len(ranges))) as workers:
                for index, (start, end) in enumerate(ranges):
                    body = first["Body"] if index == 0 else None
                    args = (fd, key, etag, start, end, body, on_progress, stop)
                    workers.submit(self._fetch, *args)
                try:
                    workers.join()
                except BaseException:
                    stop.set()  # before the pool waits for the other ranges: they stop early
                    raise
        finally:
            os.close(fd)
        return size

    def _fetch(
        self,
        fd: int,
        key: str,
        etag: str,
        start: int,
        end: int,
        body: Any,
        on_progress: Progress | None,
        stop: threading.Event,
    ) -> None:
        """Write bytes ``start``..``end`` (inclusive) of ``key`` at their offsets; ``body`` is
        a response already open on them. A retry asks only for what is still missing."""
        position = start

        def attempt(client: Any) -> None:
            nonlocal body, position
            if body is None:
                found = self._ranged(client, key, position, end, if_match=etag)
                if found is None:
                    raise PreconditionFailed(f"{self.describe()}: {key} shrank while downloading")
                body = found["Body"]
            stream, body = body, None
            while position <= end and not stop.is_set():
                chunk = stream.read(min(_CHUNK, end + 1 - position))
                if not chunk:
                    raise ChecksumMismatch(
                        f"{self.describe()}: short read of {key} at byte {position} of {end + 1}"
                    )
                os.pwrite(fd, chunk, position)
                position += len(chunk)
                if on_progress is not None:
                    on_progress(len(chunk))

        self._call(f"downloading {key}", attempt)

    # -- multipart and copies ------------------------------------------------------------------

    def start_multipart(self, key: str) -> S3MultipartUpload:
        started = self._call(
            f"starting an upload of {key}",
            lambda c: c.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
            ),
        )
        return S3MultipartUpload(self, key, str(started["UploadId"]))

    def copy_from(self, source: ObjectStore, source_key: str, key: str) -> bool:
        if not isinstance(source, S3ObjectStore) or source._location != self._location:
            return False
        info = source.head(source_key)
        if info is None:
            raise ObjectNotFound(f"{source.describe()}: no object {source_key}")
        if info.size > MAX_COPY_SIZE:
            return False
        self._call(
            f"copying {source.describe()}/{source_key} to {key}",
            lambda c: c.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": source.bucket, "Key": source_key},
                CopySourceIfMatch=f'"{info.etag}"',
                ChecksumAlgorithm="SHA256",
            ),
        )
        return True

    # -- listing and deleting ------------------------------------------------------------------

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            self._call(f"deleting {len(batch)} objects", partial(_delete, store=self, batch=batch))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            page = self._call(f"listing {prefix}", partial(self._list_page, prefix, token))
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    str(item["Key"]),
                    int(item["Size"]),
                    _etag(item["ETag"]),
                    _utc(item["LastModified"]),
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- plumbing ------------------------------------------------------------------------------

    def _list_page(self, prefix: str, token: str | None, client: Any) -> dict[str, Any]:
        paging = {} if token is None else {"ContinuationToken": token}
        page: dict[str, Any] = client.list_objects_v2(
            Bucket=self.bucket, Prefix=prefix, MaxKeys=self._page_size, **paging
        )
        return page

    def _get_or_none(self, key: str) -> Blob | None:
        try:
            return self.get(key)
        except ObjectNotFound:
            return None

    def _ranged(
        self, client: Any, key: str, first: int, last: int, *, if_match: str | None = None
    ) -> dict[str, Any] | None:
        """GetObject of bytes ``first``..``last``; None if none exist there (416)."""
        from botocore.exceptions import ClientError

        condition = {} if if_match is None else {"IfMatch": f'"{if_match}"'}
        try:
            found: dict[str, Any] = client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}", **condition
            )
        except ClientError as exc:
            if _code(exc) == "InvalidRange":
                return None
            raise
        return found

    def _call(self, action: str, attempt: Callable[[Any], T]) -> T:
        """``attempt(client)``, retried on transient failures; errors mapped to the port's."""
        for number in range(1, self._attempts + 1):
            try:
                return attempt(self._boto())
            except SwitchyardError:
                raise
            except Exception as exc:
                reason = _transient_reason(exc)
                if reason is None:
                    raise self._mapped(action, exc) from exc
                if number == self._attempts:
                    raise ObjectStoreUnavailable(
                        f"{self.describe()}: unavailable after {number} attempts {action}: {reason}"
                    ) from exc
                base, cap = self._backoff
                delay = min(cap, base * 2 ** (number - 1))
                # Half fixed, half random, so that parallel workers do not retry in step.
                self._sleep(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311
        raise AssertionError("unreachable")  # the loop returns or raises

    def _mapped(self, action: str, exc: Exception) -> SwitchyardError:
        from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

        where = self.describe()
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in _NOT_FOUND:
                return ObjectNotFound(f"{where}: not found {action}")
            if code in _PRECONDITION:
                return PreconditionFailed(f"{where}: precondition failed {action}")
            if code in _BAD_CHECKSUM:
                return ChecksumMismatch(f"{where}: the server refused the checksum {action}")
            if code == "NoSuchBucket":
                return FatalError(f"{where}: the bucket does not exist ({action})")
            return FatalError(f"{where}: {code} {action}")
        if isinstance(exc, FlexibleChecksumError):
            return ChecksumMismatch(f"{where}: bytes do not match the stored checksum {action}")
        if isinstance(exc, BotoCoreError):
            return FatalError(f"{where}: failed {action}: {type(exc).__name__}")
        return FatalError(f"{where}: failed {action}: {type(exc).__name__}: {exc}")

    def _boto(self) -> Any:
        """The client, built on first use (importing boto3 costs ~0.3 s); thread-safe."""
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                connect_timeout, read_timeout = self._timeouts
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name,
                    aws_access_key_id=self._location.access_key_id,
                    aws_secret_access_key=self._location.secret_access_key.reveal(),
                    config=Config(
                        signature_version="s3v4",
                        s3={"addressing_style": "path", "payload_signing_enabled": False},
                        connect_timeout=connect_timeout,
                        read_timeout=read_timeout,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        # Room for two transfers at full concurrency without dropping sockets.
                        max_pool_connections=max(10, 2 * self._concurrency),
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
            return self._client


class S3MultipartUpload:
    def __init__(self, store: S3ObjectStore, key: str, upload_id: str) -> None:
        self.key = key
        self._store = store
        self._upload_id = upload_id
        self._lock = threading.Lock()
        self._parts: dict[int, dict[str, Any]] = {}
        self._finished = False

    def __repr__(self) -> str:
        return f"S3MultipartUpload(key={self.key!r}, parts={len(self._parts)})"

    def put_part(self, number: int, data: bytes) -> None:
        check_part_number(number)
        self._check_open()
        checksum = _b64(hashlib.sha256(data).digest())
        sent = self._store._call(
            f"uploading part {number} of {self.key}",
            lambda c: c.upload_part(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
                ChecksumSHA256=checksum,
            ),
        )
        with self._lock:
            self._parts[number] = {
                "PartNumber": number,
                "ETag": sent["ETag"],
                "ChecksumSHA256": checksum,
            }

    def complete(self) -> None:
        with self._lock:
            self._check_open()
            parts = [self._parts[n] for n in sorted(self._parts)]
        if not parts:
            raise ValueError(f"{self.key}: a multipart upload needs at least one part")
        tries = 0

        def attempt(client: Any) -> None:
            nonlocal tries
            tries += 1
            client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )

        try:
            self._store._call(f"completing the upload of {self.key}", attempt)
        except ObjectNotFound:  # NoSuchUpload: perhaps an earlier attempt completed it
            found = self._store.head(self.key) if tries > 1 else None
            if found is None or found.etag != _multipart_etag(parts):
                raise
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        with contextlib.suppress(ObjectNotFound):  # NoSuchUpload: already gone
            self._store._call(
                f"aborting the upload of {self.key}",
                lambda c: c.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self.key, UploadId=self._upload_id
                ),
            )
        self._finished = True

    def _check_open(self) -> None:
        if self._finished:
            raise FatalError(f"multipart upload of {self.key} is already completed or aborted")


class _Workers:
    """A thread pool whose ``join`` re-raises the first failure, and which stops taking work
    (cancelling what has not started) when the block exits by an exception."""

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="objects")
        self._futures: list[Future[None]] = []

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_info[0] is not None)

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._futures.append(self._pool.submit(fn, *args))

    def join(self) -> None:
        done, _ = wait(self._futures, return_when=FIRST_EXCEPTION)
        for future in self._futures:
            if future in done and future.exception() is not None:
                future.result()
        for future in self._futures:
            future.result()


class _TransientAnswerError(Exception):
    """A 200 answer that reports a transient failure inside (DeleteObjects' per-key errors)."""


def _delete(client: Any, *, store: S3ObjectStore, batch: list[dict[str, str]]) -> None:
    answer = client.delete_objects(Bucket=store.bucket, Delete={"Objects": batch, "Quiet": True})
    errors = answer.get("Errors", [])
    if not errors:
        return
    codes = {str(error.get("Code")) for error in errors}
    if codes <= _TRANSIENT:
        raise _TransientAnswerError(", ".join(sorted(codes)))  # deleting again is harmless
    first = errors[0]
    raise FatalError(
        f"{store.describe()}: {first.get('Code')} deleting {first.get('Key')} "
        f"({len(errors)} of {len(batch)} keys not deleted)"
    )


def _abort_quietly(upload: S3MultipartUpload) -> None:
    """Abort after a failure; the failure, not the abort's, is what the caller must see
    (an upload left behind is reclaimed by the bucket's lifecycle rule)."""
    with contextlib.suppress(SwitchyardError):
        upload.abort()


def _transient_reason(exc: Exception) -> str | None:
    """Why ``exc`` is worth retrying, or None if it is not."""
    from botocore import exceptions as boto

    if isinstance(exc, _TransientAnswerError):
        return str(exc)
    if isinstance(exc, boto.ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return code if code in _TRANSIENT or status >= 500 else None
    if isinstance(exc, boto.SSLError):
        return None
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError | boto.IncompleteReadError):
        return type(exc).__name__
    return None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(raw: Any) -> str:
    return str(raw).strip('"')


def _utc(moment: datetime) -> datetime:
    # botocore hands back listing times in the local zone; the port promises UTC.
    return moment.astimezone(UTC)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _total_size(found: dict[str, Any]) -> int:
    """The object's size from a ranged GET's Content-Range ("bytes 0-9/1234")."""
    content_range = found.get("ContentRange")
    if not content_range:  # a 200 with the whole object
        return int(found["ContentLength"])
    return int(str(content_range).rsplit("/", 1)[1])


def _multipart_etag(parts: Sequence[dict[str, Any]]) -> str:
    """S3's etag of a completed multipart upload: md5 of the parts' md5s, then -<count>."""
    try:
        md5s = b"".join(bytes.fromhex(_etag(part["ETag"])) for part in parts)
    except ValueError:
        return ""  # not md5 etags (SSE-KMS): cannot tell
    return f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _preallocate(fd: int, size: int) -> None:
    """Give the file its final size, reserving the blocks where the filesystem can (so a
    full disk fails now rather than halfway)."""
    os.ftruncate(fd, size)
    if size and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
