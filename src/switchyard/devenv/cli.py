"""``switchyard dev up|down|status``: the local infrastructure harness from the command line."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from switchyard.devenv.harness import Harness


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run the local two-region infrastructure")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    for name, help_text in (
        ("up", "start every server (or the named ones); a no-op for those already running"),
        ("down", "stop the servers this harness started"),
        ("status", "show what runs, its PID, memory and endpoints"),
        ("demo", "start everything plus the API, then show the regions and the audit log"),
    ):
        p = dev_sub.add_parser(name, help=help_text)
        p.add_argument("services", nargs="*", help="service names (default: all)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
    tok = dev_sub.add_parser("token", help="print the local harness's API token for a role")
    tok.add_argument("role", choices=("viewer", "operator", "admin"))
    dev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    harness = Harness.from_env()
    if args.dev_command == "token":
        # Local, harness-invented credentials only; production tokens live in Vault.
        print(harness.creds.api_tokens[args.role])
        return 0
    if args.dev_command == "demo":
        from switchyard.devenv.demo import run_demo

        return run_demo(harness)
    if args.dev_command == "up":
        results = harness.up(args.services)
        if args.json:
            print(json.dumps([asdict(r) for r in results]))
        else:
            for r in results:
                print(f"{r.name:<14} {r.action:<16} {r.seconds:6.2f}s")
        return 0
    if args.dev_command == "down":
        stopped = harness.down(args.services)
        if args.json:
            print(json.dumps(stopped))
        else:
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    statuses = [s for s in harness.status() if not args.services or s.name in args.services]
    if args.json:
        print(json.dumps([asdict(s) for s in statuses]))
    else:
        for s in statuses:
            mem = f"{s.rss_bytes / 2**20:6.0f} MiB" if s.rss_bytes is not None else "       -"
            pid = str(s.pid) if s.pid else "-"
            where = "  ".join(f"{k}={v}" for k, v in s.endpoints.items())
            print(f"{s.name:<14} {s.state:<9} pid={pid:<8} {mem}  {where}")
    # Exit 3 when an infrastructure server is not running, so scripts can tell.
    return 0 if all(s.state == "running" for s in statuses if s.kind == "server") else 3
