"""Object store contract: the in-memory twin and S3 (the harness's SeaweedFS, one per region).

Every test works under its own key prefix and deletes what it wrote. The S3 stores use small
parts and ranges (5 MiB, 3 MiB), so a 12 MiB file exercises multipart uploads and parallel
ranged downloads; listings use pages of two keys. Nothing waits: the unreachable endpoint is
a closed loopback port, and retries sleep through an injected no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError

from switchyard.adapters.objects_memory import InMemoryObjectStore
from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.devenv.harness import Harness
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError
from switchyard.ports.objects import (
    MIN_PART_SIZE,
    ChecksumMismatch,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
    PreconditionFailed,
)

MiB = 1024 * 1024
QUICK = 0.3  # seconds: how long a test waits on an endpoint that is not there
SMALL = 1500
MULTIPART = 12 * MiB + 12345  # three 5 MiB parts, five 3 MiB ranges (the last ones short)
COPY_BUCKET = "switchyard-contract-copy"
KEY_ID = "SYCONTRACTKEYID"
SECRET = "contract-secret-that-must-not-leak"


@dataclass
class Rig:
    """A store (region-a), another bucket on the same server, and a store on another server
    (region-b); ``in_progress`` lists the keys of unfinished multipart uploads in ``store``."""

    store: ObjectStore
    same_endpoint: ObjectStore
    other_region: ObjectStore
    in_progress: Callable[[str], list[str]]
    unreachable: Callable[[], ObjectStore]
    prefix: str = field(default_factory=lambda: f"contract/{uuid4().hex[:12]}/")

    def key(self, name: str) -> str:
        return self.prefix + name

    def clean(self) -> None:
        for store in (self.store, self.same_endpoint, self.other_region):
            store.delete([info.key for info in store.list(self.prefix)])


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_store(endpoint_url: str, bucket: str, key_id: str, secret: str) -> S3ObjectStore:
    return S3ObjectStore(
        endpoint_url,
        bucket,
        access_key_id=key_id,
        secret_access_key=Secret(secret),
        part_size=MIN_PART_SIZE,
        multipart_threshold=MIN_PART_SIZE,
        range_size=3 * MiB,
        concurrency=4,
        page_size=2,
    )


def unreachable_s3(sleeps: list[float] | None = None, attempts: int = 2) -> S3ObjectStore:
    return S3ObjectStore(
        f"http://127.0.0.1:{closed_port()}",
        "contract",
        access_key_id=KEY_ID,
        secret_access_key=Secret(SECRET),
        connect_timeout=QUICK,
        read_timeout=QUICK,
        attempts=attempts,
        sleep=(lambda _: None) if sleeps is None else sleeps.append,
    )


def _memory_rig() -> Rig:
    def unreachable() -> ObjectStore:
        down = InMemoryObjectStore("down")
        down.set_reachable(False)
        return down

    return Rig(
        store=InMemoryObjectStore("bucket-a", location="endpoint-a"),
        same_endpoint=InMemoryObjectStore("copies", location="endpoint-a"),
        other_region=InMemoryObjectStore("bucket-b", location="endpoint-b"),
        in_progress=lambda prefix: [],  # a twin's unfinished upload lives in its object only
        unreachable=unreachable,
    )


def _s3_rig(harness: Harness) -> Rig:
    a, b = harness.s3["region-a"], harness.s3["region-b"]
    key_id, secret = harness.creds.s3_access_key, harness.creds.s3_secret_key
    admin = a.client()
    try:
        admin.head_bucket(Bucket=COPY_BUCKET)
    except ClientError:  # 404: not made yet
        admin.create_bucket(Bucket=COPY_BUCKET)

    def in_progress(prefix: str) -> list[str]:
        uploads = admin.list_multipart_uploads(Bucket=a.bucket, Prefix=prefix)
        return [str(u["Key"]) for u in uploads.get("Uploads", [])]

    return Rig(
        store=s3_store(a.endpoint_url, a.bucket, key_id, secret),
        same_endpoint=s3_store(a.endpoint_url, COPY_BUCKET, key_id, secret),
        other_region=s3_store(b.endpoint_url, b.bucket, key_id, secret),
        in_progress=in_progress,
        unreachable=unreachable_s3,
    )


@pytest.fixture(scope="module")
def s3_rig(harness: Harness) -> Rig:
    """Built once: each store's client (and its connections) serves every test."""
    return _s3_rig(harness)


@pytest.fixture(params=["memory", "s3"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    if request.param == "memory":
        built = _memory_rig()
    else:
        # Looked up here, not declared, so the memory half runs without servers.
        shared: Rig = request.getfixturevalue("s3_rig")
        built = replace(shared, prefix=f"contract/{uuid4().hex[:12]}/")
    yield built
    built.clean()


# -- helpers -----------------------------------------------------------------------------------


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Counted:
    """A progress callback adding up the deltas it is given (from any thread)."""

    def __init__(self) -> None:
        self.deltas: list[int] = []

    def __call__(self, delta: int) -> None:
        self.deltas.append(delta)  # list.append is atomic

    @property
    def total(self) -> int:
        return sum(self.deltas)


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, SMALL, MULTIPART], ids=["empty", "small", "multipart"])
def test_an_uploaded_file_downloads_byte_for_byte(rig: Rig, tmp_path: Path, size: int) -> None:
    data = payload(size, seed=size)
    key = rig.key("file")
    uploaded, downloaded = Counted(), Counted()

    rig.store.upload(key, write(tmp_path / "in", data), sha256=sha256(data), on_progress=uploaded)
    # A longer file already at the target is replaced, not overwritten in place.
    write(tmp_path / "out", payload(size + 3 * MiB, seed=1))
    got = rig.store.download(key, tmp_path / "out", on_progress=downloaded)

    assert got == size
    assert (tmp_path / "out").read_bytes() == data
    assert uploaded.total == size
    assert downloaded.total == size
    info = rig.store.head(key)
    assert info is not None
    assert (info.key, info.size) == (key, size)
    assert rig.store.get(key).etag == info.etag
    assert rig.in_progress(rig.prefix) == []


@pytest.mark.parametrize("size", [SMALL, MULTIPART], ids=["small", "multipart"])
def test_an_upload_with_the_wrong_sha256_is_refused_and_leaves_nothing(
    rig: Rig, tmp_path: Path, size: int
) -> None:
    data = payload(size)
    key = rig.key("file")
    with pytest.raises(ChecksumMismatch):
        rig.store.upload(key, write(tmp_path / "in", data), sha256=sha256(data + b"x"))
    assert rig.store.head(key) is None
    assert list(rig.store.list(rig.prefix)) == []
    assert rig.in_progress(rig.prefix) == []


def test_an_upload_refuses_a_sha256_that_is_not_one(rig: Rig, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        rig.store.upload(rig.key("f"), write(tmp_path / "in", b"x"), sha256="abc")


def test_downloading_a_missing_object_creates_no_file(rig: Rig, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        rig.store.download(rig.key("missing"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- small objects -----------------------------------------------------------------------------


def test_put_returns_the_etag_that_head_get_and_list_show(rig: Rig) -> None:
    key = rig.key("small")
    etag = rig.store.put(key, b"hello")
    blob = rig.store.get(key)
    info = rig.store.head(key)
    assert (blob.data, blob.etag) == (b"hello", etag)
    assert info is not None
    assert (info.size, info.etag) == (5, etag)
    assert [(i.key, i.etag) for i in rig.store.list(key)] == [(key, etag)]
    assert info.last_modified.utcoffset() == timedelta(0)
    assert abs(info.last_modified - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_missing_object_is_none_on_head_and_not_found_elsewhere(rig: Rig) -> None:
    key = rig.key("missing")
    assert rig.store.head(key) is None
    with pytest.raises(ObjectNotFound):
        rig.store.get(key)
    with pytest.raises(ObjectNotFound):
        rig.store.read_range(key, 0, 10)


def test_if_none_match_creates_once(rig: Rig) -> None:
    key = rig.key("manifest")
    etag = rig.store.put(key, b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed) as caught:
        rig.store.put(key, b"second", if_none_match=True)
    assert caught.value.code == "precondition_failed"
    assert rig.store.get(key).data == b"first"
    assert rig.store.get(key).etag == etag


def test_if_match_is_compare_and_set_on_the_etag(rig: Rig) -> None:
    key = rig.key("latest")
    stale = rig.store.put(key, b"generation 1")
    current = rig.store.put(key, b"generation 2", if_match=stale)
    with pytest.raises(PreconditionFailed):
        rig.store.put(key, b"generation 3", if_match=stale)
    assert rig.store.get(key).data == b"generation 2"
    assert rig.store.put(key, b"generation 3", if_match=current) != current
    assert rig.store.get(key).data == b"generation 3"


def test_if_match_on_a_missing_object_fails_and_creates_nothing(rig: Rig) -> None:
    key = rig.key("latest")
    etag = rig.store.put(rig.key("elsewhere"), b"x")
    with pytest.raises(PreconditionFailed):
        rig.store.put(key, b"pointer", if_match=etag)
    assert rig.store.head(key) is None


def test_put_takes_one_condition(rig: Rig) -> None:
    with pytest.raises(ValueError, match="not both"):
        rig.store.put(rig.key("k"), b"x", if_match="abc", if_none_match=True)


def test_read_range_reads_within_the_object(rig: Rig) -> None:
    key = rig.key("ranged")
    data = payload(1000)
    rig.store.put(key, data)
    assert rig.store.read_range(key, 0, 10) == data[:10]
    assert rig.store.read_range(key, 500, 250) == data[500:750]
    assert rig.store.read_range(key, 990, 100) == data[990:]  # fewer at the end
    assert rig.store.read_range(key, 1000, 10) == b""  # none past it
    with pytest.raises(ValueError, match="invalid range"):
        rig.store.read_range(key, 0, 0)


# -- listing and deleting ----------------------------------------------------------------------


def test_list_yields_every_object_under_the_prefix_in_key_order(rig: Rig) -> None:
    names = ["b/2", "a", "b/1", "c", "b/10"]  # five keys: three pages of two on S3
    etags = {rig.key(n): rig.store.put(rig.key(n), n.encode()) for n in names}
    rig.store.put(rig.prefix.rstrip("/") + "-sibling", b"outside")  # shares the prefix's stem
    try:
        listed = list(rig.store.list(rig.prefix))
        assert [i.key for i in listed] == sorted(etags)
        assert {i.key: i.etag for i in listed} == etags
        assert {i.key: i.size for i in listed} == {rig.key(n): len(n) for n in names}
        assert [i.key for i in rig.store.list(rig.key("b/1"))] == [rig.key("b/1"), rig.key("b/10")]
        assert list(rig.store.list(rig.key("nothing-here"))) == []
    finally:
        rig.store.delete([rig.prefix.rstrip("/") + "-sibling"])


def test_delete_removes_objects_and_ignores_missing_keys(rig: Rig) -> None:
    keys = [rig.key(f"k{i}") for i in range(3)]
    for key in keys:
        rig.store.put(key, b"x")
    rig.store.delete([*keys[:2], rig.key("never-written")])
    assert [i.key for i in rig.store.list(rig.prefix)] == keys[2:]
    rig.store.delete([])
    rig.store.delete(keys)
    assert list(rig.store.list(rig.prefix)) == []


# -- multipart ---------------------------------------------------------------------------------


def test_a_streamed_multipart_upload_assembles_parts_in_number_order(rig: Rig) -> None:
    key = rig.key("streamed")
    first, second = payload(MIN_PART_SIZE, seed=1), payload(1000, seed=2)
    upload = rig.store.start_multipart(key)
    upload.put_part(2, second)  # out of order, as parallel workers would
    upload.put_part(1, first)
    assert rig.store.head(key) is None  # nothing visible before complete
    upload.complete()
    assert rig.store.get(key).data == first + second
    assert rig.in_progress(rig.prefix) == []
    with pytest.raises(FatalError, match="already completed or aborted"):
        upload.put_part(3, b"late")


def test_an_aborted_multipart_upload_leaves_nothing(rig: Rig) -> None:
    key = rig.key("aborted")
    upload = rig.store.start_multipart(key)
    upload.put_part(1, payload(MIN_PART_SIZE))
    upload.abort()
    upload.abort()  # idempotent
    assert rig.store.head(key) is None
    assert rig.in_progress(rig.prefix) == []
    with pytest.raises(FatalError, match="already completed or aborted"):
        upload.put_part(2, b"late")


def test_a_part_below_the_minimum_fails_completion(rig: Rig) -> None:
    key = rig.key("too-small")
    upload = rig.store.start_multipart(key)
    upload.put_part(1, b"too small to be anything but the last part")
    upload.put_part(2, b"last")
    with pytest.raises(FatalError, match="EntityTooSmall"):
        upload.complete()
    upload.abort()
    assert rig.store.head(key) is None
    assert rig.in_progress(rig.prefix) == []


# -- copies ------------------------------------------------------------------------------------


def test_copy_from_the_same_server_is_server_side(rig: Rig) -> None:
    key = rig.key("blob")
    data = payload(SMALL)
    rig.store.put(key, data)
    assert rig.same_endpoint.copy_from(rig.store, key, key) is True
    assert rig.same_endpoint.get(key).data == data
    assert rig.store.get(key).data == data
    with pytest.raises(ObjectNotFound):
        rig.same_endpoint.copy_from(rig.store, rig.key("missing"), key)


def test_copy_from_another_server_is_left_to_the_caller(rig: Rig) -> None:
    key = rig.key("blob")
    rig.store.put(key, b"bytes")
    assert rig.other_region.copy_from(rig.store, key, key) is False
    assert rig.other_region.head(key) is None


# -- failures ----------------------------------------------------------------------------------

CALLS: dict[str, Callable[[ObjectStore, Path], object]] = {
    "head": lambda s, tmp: s.head("k"),
    "get": lambda s, tmp: s.get("k"),
    "put": lambda s, tmp: s.put("k", b"x", if_none_match=True),
    "upload": lambda s, tmp: s.upload("k", write(tmp / "in", b"x"), sha256=sha256(b"x")),
    "download": lambda s, tmp: s.download("k", tmp / "out"),
    "read_range": lambda s, tmp: s.read_range("k", 0, 1),
    "start_multipart": lambda s, tmp: s.start_multipart("k"),
    "list": lambda s, tmp: list(s.list("")),
    "delete": lambda s, tmp: s.delete(["k"]),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_an_unreachable_store_is_unavailable(
    rig: Rig, tmp_path: Path, call: Callable[[ObjectStore, Path], object]
) -> None:
    down = rig.unreachable()
    with pytest.raises(ObjectStoreUnavailable, match=re.escape(down.describe())) as caught:
        call(down, tmp_path)
    assert caught.value.code == "object_store_unavailable"


# -- the S3 adapter alone ----------------------------------------------------------------------


def test_s3_retries_with_growing_backoff_then_names_the_endpoint() -> None:
    sleeps: list[float] = []
    store = unreachable_s3(sleeps, attempts=4)
    with pytest.raises(ObjectStoreUnavailable) as caught:
        store.head("k")
    assert len(sleeps) == 3  # four attempts, a sleep between each two
    assert sleeps == sorted(sleeps)
    assert sleeps[0] > 0
    message = str(caught.value)
    assert store.describe() in message
    assert "after 4 attempts" in message
    assert str(store.endpoint_url) in message
    assert SECRET not in message
    assert KEY_ID not in message


class FlakyProxy:
    """A TCP proxy to ``port``; the next ``broken`` connections it accepts are cut once
    ``cut_after`` bytes went through them (either way), as a dying link would."""

    def __init__(self, port: int, *, cut_after: int) -> None:
        self._target = port
        self._cut_after = cut_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.broken = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            budget = [-1]
            if self.broken > 0:
                self.broken -= 1
                budget = [self._cut_after]
            for src, dst in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=_pump, args=(src, dst, client, upstream, budget))
                pump.start()


def _pump(
    src: socket.socket, dst: socket.socket, a: socket.socket, b: socket.socket, budget: list[int]
) -> None:
    """Copy ``src`` to ``dst`` until either closes or the shared ``budget`` (-1: none) runs
    out; then close both ends of the connection."""
    try:
        while budget[0] != 0:
            data = src.recv(65536 if budget[0] < 0 else min(65536, budget[0]))
            if not data:
                break
            if budget[0] > 0:
                budget[0] -= len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (a, b):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_s3_retries_broken_transfers_and_resumes_downloads(
    harness: Harness, tmp_path: Path
) -> None:
    server = harness.s3["region-a"]
    proxy = FlakyProxy(int(server.port("s3")), cut_after=MiB)
    sleeps: list[float] = []

    def through_proxy() -> S3ObjectStore:  # a new client: new connections, all proxied
        return S3ObjectStore(
            f"http://127.0.0.1:{proxy.port}",
            server.bucket,
            access_key_id=harness.creds.s3_access_key,
            secret_access_key=Secret(harness.creds.s3_secret_key),
            part_size=MIN_PART_SIZE,
            multipart_threshold=MIN_PART_SIZE,
            range_size=4 * MiB,
            concurrency=3,
            attempts=6,
            sleep=sleeps.append,
        )

    data = payload(MULTIPART, seed=7)
    key = f"contract/{uuid4().hex[:12]}/flaky"
    try:
        proxy.broken = 3
        through_proxy().upload(key, write(tmp_path / "in", data), sha256=sha256(data))
        assert len(sleeps) == 3  # each broken connection cost one part one attempt
        # Every range breaks after 1 MiB of its 4 MiB once, and resumes where it broke.
        proxy.broken = 3
        assert through_proxy().download(key, tmp_path / "out") == len(data)
        assert (tmp_path / "out").read_bytes() == data
        assert len(sleeps) == 6
    finally:
        proxy.close()
        creds = harness.creds
        s3_store(
            server.endpoint_url, server.bucket, creds.s3_access_key, creds.s3_secret_key
        ).delete([key])


def test_s3_store_shows_no_credentials() -> None:
    store = unreachable_s3()
    for shown in (repr(store), str(store), store.describe()):
        assert SECRET not in shown
        assert KEY_ID not in shown
        assert "contract" in shown or "S3ObjectStore" in shown


def test_s3_stores_with_other_credentials_do_not_copy_server_side() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    mine = s3_store(endpoint, "one", KEY_ID, SECRET)
    theirs = s3_store(endpoint, "two", KEY_ID, SECRET + "-other")
    # Decided without a request: the endpoint is closed, so any request would fail.
    assert mine.copy_from(theirs, "k", "k") is False
    assert mine.copy_from(InMemoryObjectStore(), "k", "k") is False
