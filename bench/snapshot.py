"""Benchmark: vector-index snapshots through S3, beside ``rclone copy`` to the same SeaweedFS.

A private SeaweedFS (``s3-region-a`` of a private harness: its own folder and ports) and a
synthetic index of about ``--mb`` MiB: markdown documents of a few hundred words, chunked by
the real chunker, with random unit vectors from a seeded fake embedder (``bench/random-384``;
their values do not matter to transfer speed) and the real HNSW graph and BM25 counts. The
index is cached under ``.local/bench/snapshot-index/`` keyed by its parameters, so only the
first run builds it (and prints how long that took).

1. Upload: ``publish`` of the whole snapshot into a fresh bucket (MiB/s = snapshot bytes /
   seconds), then ``rclone copy`` of the same segment files into another fresh bucket.
2. Download: what a standby does to restore it (read the manifest, ``download_segments``:
   every file fetched into staging and its size and sha256 verified before the segment is
   adopted; the verification is in our time), then ``rclone copy`` of rclone's bucket into a
   fresh folder (rclone checks each file's MD5 against its etag).
   Each direction runs ``--runs`` times (2), alternating ours, rclone, ours, rclone; the best
   run of each is compared (the page cache is not controlled; the disk is synced before each
   run).
   Target: ours >= 0.9x rclone both ways.
3. Incremental: 1 % of the documents get new text (``with_documents``, saved the way a
   runtime does), and the new generation is published into the first bucket. Target: bytes
   uploaded <= 1.2x the changed bytes.

Figures only; nothing is asserted.

    .venv/bin/python bench/snapshot.py [--mb 200] [--runs 2] [--json]
        [--part-mib N] [--range-mib N] [--concurrency N]   (S3ObjectStore's defaults if not given)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from cpu import busy_cores_seconds, cpu_seconds

from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import repo_root
from switchyard.devenv.ports import free_port_base
from switchyard.devenv.stacks import private_harness
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.embedding import Vectors
from switchyard.dialog.index import SearchIndex, build_index, with_documents
from switchyard.dialog.live_index import LiveIndex
from switchyard.dialog.model import Document
from switchyard.dialog.store import IndexManifest, IndexStore, SegmentEntry
from switchyard.domain.secrets import Secret
from switchyard.snapshots.layout import FILE_CONCURRENCY, read_manifest
from switchyard.snapshots.publish import publish
from switchyard.snapshots.restore import download_segments, latest_generation

MiB = 1024 * 1024
REGION = "region-a"
SERVERS = (f"s3-{REGION}",)
MODEL_ID = "bench/random-384"
DIMENSION = 384
SEED = 20240611
CORPUS = "corpus1"  # names how ``document`` writes text: change it when that changes
WORDS_PER_DOC = 600  # at least; ~650 on average, 8.5 chunks (the chunker packs 110 words)
# Snapshot bytes per document (measured): 8.5 chunks of ~4.9 KB, of which vectors and the
# HNSW graph are 3.3 KB, BM25 counts 0.9 KB, the chunk text 0.6 KB.
BYTES_PER_DOC = 41_700
CHANGED_SHARE = 0.01
RCLONE_REMOTE = "SNAPBENCH"


# --- the synthetic index -----------------------------------------------------------------------


class RandomEmbedder:
    """Random L2-normalised rows from a seeded generator: an ``Embedder`` for sizing, not
    for search (the same text embedded twice gets two different vectors)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str]) -> Vectors:
        rows = self._rng.standard_normal((len(texts), DIMENSION), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows


def vocabulary(rng: np.random.Generator, size: int = 6000) -> list[str]:
    """Pronounceable made-up words, so BM25 has a vocabulary of realistic size."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    lengths = rng.integers(1, 4, size)
    return sorted({"".join(rng.choice(syllables, n)) for n in lengths})


def document(doc_id: str, words: list[str], rng: np.random.Generator) -> Document:
    """Markdown of ``WORDS_PER_DOC`` words or a few more: a title, then sections of paragraphs
    of sentences; every document's text differs (drawn from ``rng``)."""
    picks = iter(rng.integers(0, len(words), WORDS_PER_DOC * 2).tolist())
    title = " ".join(words[next(picks)] for _ in range(4)).capitalize()
    parts = [f"# {title}"]
    budget = WORDS_PER_DOC
    for section in range(4):
        parts.append(f"## {section + 1}. {words[next(picks)]} {words[next(picks)]}")
        for _ in range(3):
            sentences = []
            for _ in range(int(rng.integers(3, 7))):
                n = int(rng.integers(8, 16))
                sentence = " ".join(words[next(picks)] for _ in range(n))
                sentences.append(sentence.capitalize() + ".")
                budget -= n
            parts.append(" ".join(sentences))
            if budget <= 0:
                break
    text = "\n\n".join(parts) + "\n"
    sha = hashlib.sha256(text.encode()).hexdigest()
    return Document(doc_id, title, text, "text/markdown", sha)


def documents(count: int, revision: int, ids: Sequence[int] | None = None) -> list[Document]:
    """Documents ``ids`` (all ``count`` by default) at ``revision``: the same arguments give the
    same texts; another revision gives a document new text."""
    words = vocabulary(np.random.default_rng(SEED))
    chosen = range(count) if ids is None else ids
    return [
        document(f"kb/{i:06d}.md", words, np.random.default_rng([SEED, revision, i]))
        for i in chosen
    ]


@dataclass(frozen=True)
class Cached:
    store: IndexStore
    index: SearchIndex
    documents: int
    build_seconds: float | None  # None: taken from the cache


def cached_index(mb: float) -> Cached:
    """The index of ``mb`` MiB, built once per parameters under .local/bench/snapshot-index/."""
    count = max(100, round(mb * MiB / BYTES_PER_DOC))
    key = f"{CORPUS}-docs{count}-words{WORDS_PER_DOC}-seed{SEED}-{CHUNKER_VERSION}"
    folder = repo_root() / ".local" / "bench" / "snapshot-index" / key
    embedder = RandomEmbedder(SEED)
    if (folder / "current").is_symlink():
        store = IndexStore(folder)
        index = store.load(model_id=MODEL_ID, chunker_version=CHUNKER_VERSION)
        return Cached(store, index, count, None)
    print(f"== building a synthetic index of {count} documents (cached for later runs)")
    t0 = time.perf_counter()
    index = build_index(documents(count, 0), embedder)
    tmp = folder.with_name(f".{key}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    IndexStore(tmp).save(index)
    tmp.rename(folder)
    return Cached(IndexStore(folder), index, count, time.perf_counter() - t0)


def working_copy(cached: IndexStore, root: Path) -> IndexStore:
    """A store under ``root`` sharing the cached segment files (hard links: nothing writes a
    segment file in place), with the cached generation current."""
    shutil.copytree(cached.segments, root / "segments", copy_function=os.link)
    store = IndexStore(root)
    store.make_current(store.save_manifest(cached.read_manifest()))
    return store


# --- measuring ---------------------------------------------------------------------------------


def own_and_children_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True)
class Transfer:
    who: str  # switchyard | rclone
    direction: str  # up | down
    run: int
    bytes: int
    seconds: float
    client_cpu: float  # CPU seconds of this process and rclone
    server_cpu: float  # CPU seconds of SeaweedFS
    busy_cores: float  # cores the whole machine kept busy

    @property
    def mib_s(self) -> float:
        return self.bytes / MiB / self.seconds


def timed(
    who: str, direction: str, run: int, size: int, server_pid: int, work: Callable[[], Any]
) -> Transfer:
    os.sync()  # the previous run's dirty pages are not this run's to write
    client, server, busy = own_and_children_cpu(), cpu_seconds(server_pid), busy_cores_seconds()
    t0 = time.perf_counter()
    work()
    seconds = time.perf_counter() - t0
    return Transfer(
        who,
        direction,
        run,
        size,
        seconds,
        own_and_children_cpu() - client,
        cpu_seconds(server_pid) - server,
        (busy_cores_seconds() - busy) / seconds,
    )


# --- the two clients -------------------------------------------------------------------------


class StoreArguments(TypedDict, total=False):
    part_size: int
    multipart_threshold: int
    range_size: int
    concurrency: int


@dataclass(frozen=True)
class Tuning:
    """Transfer settings given to ``S3ObjectStore``; None leaves the adapter's default (what
    the runtime and the CLI use)."""

    part_mib: int | None  # also the multipart threshold
    range_mib: int | None
    concurrency: int | None

    def arguments(self) -> StoreArguments:
        given = StoreArguments()
        if self.part_mib is not None:
            given["part_size"] = given["multipart_threshold"] = self.part_mib * MiB
        if self.range_mib is not None:
            given["range_size"] = self.range_mib * MiB
        if self.concurrency is not None:
            given["concurrency"] = self.concurrency
        return given

    def describe(self) -> str:
        given = []
        if self.part_mib is not None:
            given.append(f"part_size=multipart_threshold={self.part_mib} MiB")
        if self.range_mib is not None:
            given.append(f"range_size={self.range_mib} MiB")
        if self.concurrency is not None:
            given.append(f"concurrency={self.concurrency}")
        return f"S3ObjectStore({', '.join(given)})" if given else "S3ObjectStore's defaults"


class Bucket:
    """A fresh bucket on the private SeaweedFS, its objects and itself deleted on ``drop``."""

    def __init__(self, h: Harness, kind: str, tuning: Tuning) -> None:
        s3 = h.s3[REGION]
        self.name = f"bench-{kind}-{uuid.uuid4().hex[:10]}"
        self._s3 = s3
        self._h = h
        self._tuning = tuning
        s3.client().create_bucket(Bucket=self.name)

    def store(self) -> S3ObjectStore:
        """A new client each time (its start-up counts, as rclone's does)."""
        return S3ObjectStore(
            self._s3.endpoint_url,
            self.name,
            access_key_id=self._h.creds.s3_access_key,
            secret_access_key=Secret(self._h.creds.s3_secret_key),
            **self._tuning.arguments(),
        )

    def drop(self) -> None:
        store = self.store()
        store.delete([info.key for info in store.list("")])
        self._s3.client().delete_bucket(Bucket=self.name)


def rclone_env(h: Harness) -> dict[str, str]:
    """rclone configured by environment only (no config file). It refuses to start while
    AWS_CA_BUNDLE is set, so that one is left out."""
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE}_"
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        {
            f"{prefix}TYPE": "s3",
            f"{prefix}PROVIDER": "Other",
            f"{prefix}ENDPOINT": h.s3[REGION].endpoint_url,
            f"{prefix}ACCESS_KEY_ID": h.creds.s3_access_key,
            f"{prefix}SECRET_ACCESS_KEY": h.creds.s3_secret_key,
            f"{prefix}REGION": "us-east-1",
            f"{prefix}FORCE_PATH_STYLE": "true",
            f"{prefix}NO_CHECK_BUCKET": "true",
        }
    )
    return env


def rclone_copy(env: dict[str, str], source: str, target: str) -> None:
    subprocess.run(
        ["rclone", "copy", "--config", "", "-q", source, target],
        env=env,
        check=True,
    )


# --- the phases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incremental:
    changed_documents: int
    changed_bytes: int  # the files of the new segment (which holds exactly those documents)
    uploaded_bytes: int
    uploaded_files: int
    seconds: float
    segments: int


def utc_now() -> datetime:
    return datetime.now(UTC)


def warm_up(h: Harness, store: IndexStore, tuning: Tuning, scratch: Path) -> None:
    """One small file through each client into a throwaway bucket, untimed: SeaweedFS's
    first write (its first volumes) and botocore's first client (loading its service
    models) otherwise land on whichever run comes first."""
    bucket = Bucket(h, "warm-up", tuning)
    smallest = min(store.read_manifest().files, key=lambda f: f.size)
    bucket.store().upload("warm-up/ours", store.root / smallest.path, sha256=smallest.sha256)
    sample = scratch / "warm-up"
    sample.mkdir()
    os.link(store.root / smallest.path, sample / "file")
    rclone_copy(rclone_env(h), str(sample), f"{RCLONE_REMOTE}:{bucket.name}/warm-up/rclone")
    bucket.drop()


def upload_runs(
    h: Harness, store: IndexStore, tuning: Tuning, runs: int, buckets: list[Bucket], server: int
) -> list[Transfer]:
    """``runs`` alternating uploads of the whole snapshot, each into fresh buckets (appended
    to ``buckets``: ours, rclone's, ours, ...)."""
    env = rclone_env(h)
    size = sum(f.size for f in store.read_manifest().files)
    results = []
    for run in range(1, runs + 1):
        ours, peer = Bucket(h, "ours", tuning), Bucket(h, "rclone", tuning)
        buckets += [ours, peer]
        print(f"== upload run {run}: publish into {ours.name}")
        publishing = partial(publish, store, ours.store(), region=REGION, now=utc_now)
        results.append(timed("switchyard", "up", run, size, server, publishing))
        print(f"== upload run {run}: rclone copy into {peer.name}")
        target = f"{RCLONE_REMOTE}:{peer.name}/segments"
        work = partial(rclone_copy, env, str(store.segments), target)
        results.append(timed("rclone", "up", run, size, server, work))
    return results


def restore(bucket: Bucket, root: Path) -> None:
    """What a standby does with a generation it lacks entirely: every segment downloaded into
    staging, verified (size and sha256) and adopted, then the manifest saved."""
    objects = bucket.store()
    store = IndexStore(root)
    generation = latest_generation(objects)
    if generation is None:
        raise SystemExit(f"bench: nothing published in {bucket.name}")
    manifest = read_manifest(objects, generation)
    download_segments(objects, store, manifest.index.segments, None)
    store.make_current(store.save_manifest(manifest.index))


def download_runs(
    h: Harness, ours: Bucket, peer: Bucket, size: int, runs: int, scratch: Path, server: int
) -> list[Transfer]:
    env = rclone_env(h)
    results = []
    for run in range(1, runs + 1):
        print(f"== download run {run}: restore from {ours.name}")
        target = scratch / f"restore-{run}"
        results.append(
            timed("switchyard", "down", run, size, server, partial(restore, ours, target))
        )
        shutil.rmtree(target)
        print(f"== download run {run}: rclone copy from {peer.name}")
        folder = scratch / f"rclone-{run}"
        work = partial(rclone_copy, env, f"{RCLONE_REMOTE}:{peer.name}/segments", str(folder))
        results.append(timed("rclone", "down", run, size, server, work))
        shutil.rmtree(folder)
    return results


def incremental(cached: Cached, store: IndexStore, bucket: Bucket) -> Incremental:
    count = cached.documents
    step = round(1 / CHANGED_SHARE)
    ids = list(range(0, count, step))
    changed = documents(count, 1, ids)
    before = store.read_manifest()
    print(f"== incremental: {len(changed)} of {count} documents get new text")
    live = LiveIndex(cached.index, store)
    live.activate(with_documents(cached.index, changed, RandomEmbedder(SEED + 1)))
    after = store.read_manifest()
    old = {s.id for s in before.segments}
    new = [s for s in after.segments if s.id not in old]
    check_new_segment(live.current, new, {d.doc_id for d in changed})
    changed_bytes = sum(f.size for s in new for f in s.files)
    objects = bucket.store()
    t0 = time.perf_counter()
    result = publish(store, objects, region=REGION, now=utc_now)
    seconds = time.perf_counter() - t0
    return Incremental(
        len(changed),
        changed_bytes,
        result.uploaded_bytes,
        result.uploaded_files,
        seconds,
        len(after.segments),
    )


def check_new_segment(index: SearchIndex, new: Sequence[SegmentEntry], changed: set[str]) -> None:
    """The definition of changed bytes holds only if no merge ran: one new segment holding
    exactly the changed documents."""
    held = {d for s in index.segments if s.id in {n.id for n in new} for d in s.documents}
    if len(new) != 1 or held != changed:
        raise SystemExit(
            f"bench: expected one new segment of the {len(changed)} changed documents, got"
            f" {len(new)} new segment(s) holding {len(held)} documents (a merge ran?)"
        )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    tuning = Tuning(args.part_mib, args.range_mib, args.concurrency)
    cached = cached_index(args.mb)
    manifest: IndexManifest = cached.store.read_manifest()
    size = sum(f.size for f in manifest.files)
    port_base = int(os.environ.get("BENCH_PORT_BASE") or free_port_base())
    busy = busy_cores_seconds()
    time.sleep(1.0)
    background = busy_cores_seconds() - busy  # before anything of ours runs
    scratch_root = repo_root() / ".local" / "bench"
    scratch = Path(tempfile.mkdtemp(prefix="snapshot-run-", dir=scratch_root))
    buckets: list[Bucket] = []
    try:
        with private_harness("bench-snapshot", SERVERS, port_base) as h:
            server = int(Path(h.layout.pidfile(SERVERS[0])).read_text().split()[0])
            print(f"== private SeaweedFS on ports from {port_base}")
            store = working_copy(cached.store, scratch / "index")
            warm_up(h, store, tuning, scratch)
            ups = upload_runs(h, store, tuning, args.runs, buckets, server)
            downs = download_runs(h, buckets[0], buckets[1], size, args.runs, scratch, server)
            inc = incremental(cached, store, buckets[0])
            print("== deleting the buckets")
            for bucket in buckets:
                bucket.drop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "mb": args.mb,
        "tuning": asdict(tuning),
        "client": tuning.describe(),
        "runs": args.runs,
        "documents": cached.documents,
        "chunks": manifest.info.chunks,
        "files": [asdict(f) for f in manifest.files],
        "snapshot_bytes": size,
        "build_seconds": cached.build_seconds,
        "background_cores": background,
        "transfers": [{**asdict(t), "mib_s": t.mib_s} for t in [*ups, *downs]],
        "incremental": asdict(inc),
    }


# --- reporting -------------------------------------------------------------------------------


def report(f: dict[str, Any]) -> None:
    print(
        f"\nSnapshot of {f['documents']} documents, {f['chunks']} chunks:"
        f" {f['snapshot_bytes'] / MiB:.1f} MiB in {len(f['files'])} files; one SeaweedFS"
        f" ({SERVERS[0]}, private), {os.cpu_count()} CPUs; other processes kept"
        f" {f['background_cores']:.2f} cores busy before the run"
    )
    if f["build_seconds"] is not None:
        print(f"index built in {f['build_seconds']:.1f} s (cached for the next run)")
    print(
        f"switchyard: {f['client']}, {FILE_CONCURRENCY} files at a time each way;"
        f" rclone {rclone_version()} with its defaults (4 files at a time, single PUT below"
        " 200 MiB)"
    )
    print(
        f"\n{'transfer':<50} {'MiB/s':>7} {'seconds':>8} {'client s':>9} {'server s':>9}"
        f" {'machine':>8}"
    )
    labels = {
        ("switchyard", "up"): "switchyard publish",
        ("rclone", "up"): "rclone copy → bucket",
        ("switchyard", "down"): "switchyard download + verify sha256",
        ("rclone", "down"): "rclone copy ← bucket (MD5 checked)",
    }
    rows = f["transfers"]
    for r in sorted(rows, key=lambda r: (r["direction"] != "up", r["who"] != "switchyard")):
        label = f"{labels[r['who'], r['direction']]}, run {r['run']} of {f['runs']}"
        print(
            f"{label:<50} {r['mib_s']:>7.1f} {r['seconds']:>8.2f} {r['client_cpu']:>9.2f}"
            f" {r['server_cpu']:>9.2f} {r['busy_cores']:>8.2f}"
        )
    for direction, word in (("up", "upload"), ("down", "download")):
        runs = {
            who: [r for r in rows if r["who"] == who and r["direction"] == direction]
            for who in ("switchyard", "rclone")
        }
        best = {who: max(r["mib_s"] for r in found) for who, found in runs.items()}
        print(
            f"{word}: switchyard {best['switchyard']:.1f} MiB/s, rclone {best['rclone']:.1f}"
            f" MiB/s (best of {f['runs']} each): {best['switchyard'] / best['rclone']:.2f}x"
            " (target ≥ 0.9x)"
        )
        # CPU per transfer barely depends on what else runs, unlike the wall time.
        cpu = {
            who: (
                statistics.median(r["client_cpu"] for r in found),
                statistics.median(r["server_cpu"] for r in found),
            )
            for who, found in runs.items()
        }
        print(
            f"  CPU seconds per {word} (medians, client + server): switchyard"
            f" {cpu['switchyard'][0]:.2f} + {cpu['switchyard'][1]:.2f}, rclone"
            f" {cpu['rclone'][0]:.2f} + {cpu['rclone'][1]:.2f}"
        )
    inc = f["incremental"]
    print(
        f"\nincremental: {inc['changed_documents']} documents (1 %) get new text. 'Changed"
        " bytes' = the size of the changed documents' data in the\nsnapshot: the files of the"
        " one new segment, which holds exactly those documents (chunks, vectors, HNSW graph,"
        " BM25 counts)"
    )
    print(
        f"uploaded {inc['uploaded_bytes'] / MiB:.2f} MiB in {inc['uploaded_files']} files"
        f" ({inc['seconds']:.2f} s) for {inc['changed_bytes'] / MiB:.2f} MiB changed:"
        f" {inc['uploaded_bytes'] / inc['changed_bytes']:.2f}x (target ≤ 1.2x);"
        f" the generation now has {inc['segments']} segments"
    )
    print(
        "\nCPU seconds each transfer took from 'client': this process or rclone, and from"
        " 'server': SeaweedFS (on a small machine the server's share decides the pace);"
        "\n'machine': cores the whole machine kept busy meanwhile. The disk is synced before"
        " each run; the page cache is not dropped\n(the files to upload are cached for both"
        " clients alike)."
    )
    if f["background_cores"] > 0.25:
        print(
            "warning: other processes were busy before the run; these figures may understate"
            " both clients (rerun on a quiet machine)"
        )


def rclone_version() -> str:
    out = subprocess.run(["rclone", "version"], capture_output=True, text=True, check=False)
    return out.stdout.split("\n", 1)[0].removeprefix("rclone ").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="snapshot size in MiB")
    parser.add_argument("--runs", type=int, default=2, help="runs of each client each way")
    parser.add_argument("--part-mib", type=int, help="upload part size and multipart threshold")
    parser.add_argument("--range-mib", type=int, help="download range size")
    parser.add_argument("--concurrency", type=int, help="parts or ranges in flight per file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        raise SystemExit("bench: rclone not found (make bootstrap installs it)")
    # A plain `kill` still stops the private SeaweedFS (the `finally`s run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    figures = measure(args)
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)


if __name__ == "__main__":
    main()
