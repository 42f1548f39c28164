"""``switchyard snapshot ...``: publish, replicate, restore, status, prune, sync.

Exit codes follow ``switchyard``'s: 0 done, 1 refused or failed (the reason is printed),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any


def add_parser(sub: Any) -> None:
    snap = sub.add_parser("snapshot", help="vector-index snapshots through S3")
    cmds = snap.add_subparsers(dest="snapshot_command", required=True)

    pub = cmds.add_parser("publish", help="publish a region's current index to its bucket")
    pub.add_argument("--region", required=True)
    pub.add_argument(
        "--no-replicate", action="store_true", help="do not copy to the other regions afterwards"
    )
    pub.set_defaults(handler=_publish)

    rep = cmds.add_parser("replicate", help="copy a generation from one region's bucket to another")
    rep.add_argument("source")
    rep.add_argument("target")
    rep.add_argument("--generation", type=int, help="default: the source's latest")
    rep.set_defaults(handler=_replicate)

    res = cmds.add_parser(
        "restore", help="ask a region's runtime to restore a generation (gate, then swap)"
    )
    res.add_argument("--region", required=True)
    res.add_argument("--generation", type=int, help="default: the newest in its bucket")
    res.set_defaults(handler=_restore)

    st = cmds.add_parser("status", help="generations per region: latest, active, age")
    st.set_defaults(handler=_status)

    pr = cmds.add_parser("prune", help="delete old generations and unreferenced blobs")
    pr.add_argument("--region", required=True, help="whose bucket")
    pr.add_argument("--keep", type=int, default=5, help="newest generations kept (default 5)")
    pr.add_argument(
        "--grace-seconds",
        type=float,
        default=3600.0,
        help="never delete blobs younger than this (default 3600: a publish may be under way)",
    )
    pr.set_defaults(handler=_prune)

    sy = cmds.add_parser(
        "sync", help="replicate the primary's newest generation everywhere and restore it"
    )
    sy.add_argument("--every", type=float, help="repeat every SECONDS until interrupted")
    sy.set_defaults(handler=_sync)

    for p in (pub, rep, res, st, pr, sy):
        p.add_argument("--json", action="store_true", help="print the result as JSON")


def _context(region: str | None = None) -> Any:
    from switchyard.bootstrap import build_snapshot_context
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, region or settings.vantage)
    return build_snapshot_context(settings, redactor)


def _now() -> datetime:
    return datetime.now(UTC)


def _emit(args: argparse.Namespace, result: Any, sentence: str) -> None:
    if args.json:
        print(json.dumps(result, default=str, indent=2))
    else:
        print(sentence)


def _publish(args: argparse.Namespace) -> int:
    from switchyard.snapshots.progress import ProgressMeter
    from switchyard.snapshots.publish import publish
    from switchyard.snapshots.replicate import replicate

    ctx = _context(args.region)
    meter = ProgressMeter(f"publish {args.region}")
    result = publish(
        ctx.index_store(args.region),
        ctx.store(args.region),
        region=args.region,
        now=_now,
        progress=meter,
    )
    seconds = meter.finish()
    body: dict[str, Any] = {**asdict(result), "seconds": round(seconds, 3), "replicated": []}
    if result.unchanged:
        sentence = f"generation {result.generation} already holds this index; nothing published"
    else:
        sentence = (
            f"published generation {result.generation}: {result.uploaded_files} of "
            f"{result.files} files uploaded ({result.uploaded_bytes} of {result.total_bytes} "
            f"bytes)"
        )
    if not args.no_replicate:
        for other in ctx.regions:
            if other != args.region:
                copied = replicate(ctx.store(args.region), ctx.store(other))
                body["replicated"].append({"region": other, **asdict(copied)})
                sentence += f"; copied to {other}: {copied.copied_files} files"
    _emit(args, body, sentence)
    return 0


def _replicate(args: argparse.Namespace) -> int:
    from switchyard.snapshots.progress import ProgressMeter
    from switchyard.snapshots.replicate import replicate

    ctx = _context(args.target)
    meter = ProgressMeter(f"replicate {args.source}->{args.target}")
    result = replicate(
        ctx.store(args.source), ctx.store(args.target), generation=args.generation, progress=meter
    )
    meter.finish()
    if result.generation is None:
        _emit(args, asdict(result), f"{args.source} has published nothing yet")
        return 0
    _emit(
        args,
        asdict(result),
        f"generation {result.generation} in {args.target}: {result.copied_files} files copied "
        f"({result.copied_bytes} bytes, {result.server_side} server-side)"
        + ("; latest moved" if result.pointer_moved else ""),
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from switchyard.snapshots.restore import latest_generation

    ctx = _context(args.region)
    generation = args.generation or latest_generation(ctx.store(args.region))
    if generation is None:
        print(f"switchyard: {args.region}'s bucket holds no snapshot", file=sys.stderr)
        return 1
    ok, sentence = ctx.restorer()(args.region, generation)
    _emit(
        args,
        {"region": args.region, "generation": generation, "ok": ok, "detail": sentence},
        sentence,
    )
    return 0 if ok else 1


def _status(args: argparse.Namespace) -> int:
    from switchyard.snapshots.status import read_status

    ctx = _context()
    now = _now()
    rows = []
    for s in read_status({r: ctx.store(r) for r in ctx.regions}).values():
        age = s.age_seconds(now)
        rows.append({**asdict(s), "age_seconds": None if age is None else round(age, 1)})
    lines = [
        f"{r['region']:<12} latest {r['latest_generation']!s:>5}  "
        f"active {r['active_generation']!s:>5}  age {r['age_seconds']!s:>8} s"
        + (f"  error: {r['error']}" if r["error"] else "")
        for r in rows
    ]
    _emit(args, rows, "\n".join(lines))
    return 1 if any(r["error"] for r in rows) else 0


def _prune(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from switchyard.snapshots.retention import prune

    ctx = _context(args.region)
    result = prune(
        ctx.store(args.region),
        keep_last=args.keep,
        regions=ctx.regions,
        now=_now(),
        grace=timedelta(seconds=args.grace_seconds),
    )
    _emit(
        args,
        asdict(result),
        f"kept generations {list(result.kept)}; deleted generations "
        f"{list(result.deleted_generations)} and {result.deleted_blobs} blobs "
        f"({result.deleted_bytes} bytes)",
    )
    return 0


def _sync(args: argparse.Namespace) -> int:
    from switchyard.snapshots.sync import sync_once

    ctx = _context()
    while True:
        results = sync_once({r: ctx.store(r) for r in ctx.regions}, ctx.primary(), ctx.restorer())
        _emit(args, [asdict(r) for r in results], "\n".join(r.sentence for r in results))
        if args.every is None:
            return 0 if all(r.ok for r in results) else 1
        time.sleep(args.every)
