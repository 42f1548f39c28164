"""The ``switchyard`` command.

Exit codes: 0 success; 1 an operation failed; 2 bad usage or invalid configuration;
3 ``dev status`` found a server not running.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from switchyard.errors import ConfigError, SwitchyardError


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from switchyard.api.app import create_app
    from switchyard.bootstrap import build_api_context, build_core, start_credential_keeper
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, settings.vantage)
    core = build_core(settings, redactor)
    app = create_app(build_api_context(core))
    # Its Vault token renewed for as long as it serves (a daemon thread).
    start_credential_keeper("credentials-api", core.secrets)
    uvicorn.run(
        app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from switchyard.bootstrap import (
        build_core,
        build_region_store,
        prepare_region_store,
        prepare_store,
    )
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, args.region or settings.vantage)
    if args.region:
        store = build_region_store(settings, args.region, redactor)
        state = prepare_region_store(store)
        store.engine.dispose()
        print(f"region {state.region} store migrated; role {state.role.value}, epoch {state.epoch}")
        return 0
    added = prepare_store(build_core(settings, redactor))
    print("store migrated; regions recorded: " + (", ".join(r.name for r in added) or "none new"))
    return 0


def _runtime(args: argparse.Namespace) -> int:
    import uvicorn

    from switchyard.bootstrap import build_runtime
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, args.region)
    parts = build_runtime(settings, args.region, redactor)
    uvicorn.run(parts.app, host=parts.host, port=parts.port, log_config=None, access_log=False)
    return 0


def _controller(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from prometheus_client import start_http_server

    from switchyard.bootstrap import build_controller
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, args.vantage)
    process = build_controller(settings, args.vantage, redactor)
    if settings.metrics_port is not None:
        start_http_server(
            settings.metrics_port, addr=settings.api_host, registry=process.metrics.registry
        )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            if args.once:
                report = await process.controller.cycle()
                print(report.decision.reason if report.decision else report.error or "not leader")
            else:
                await process.controller.run(stop)
        finally:
            await process.probe_clients.aclose()
            process.close()

    asyncio.run(run())
    return 0


def _cdc_run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from prometheus_client import start_http_server

    from switchyard.bootstrap import build_cdc_sink, build_cdc_source
    from switchyard.observability.logging import configure_logging
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, args.region)
    build = build_cdc_source if args.cdc_command == "source" else build_cdc_sink
    process = build(settings, args.region, redactor)
    if settings.metrics_port is not None:
        start_http_server(
            settings.metrics_port, addr=settings.api_host, registry=process.metrics.registry
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        process.run(stop.is_set)
    finally:
        process.close()
    return 0


def _cdc_resync(args: argparse.Namespace) -> int:
    from switchyard.bootstrap import cdc_database_urls
    from switchyard.observability.logging import configure_logging
    from switchyard.replication.resync import request_resync
    from switchyard.settings import load_settings

    settings = load_settings()
    redactor = configure_logging(settings.log_level, args.target)
    urls = cdc_database_urls(settings, (args.source, args.target), redactor)
    tables = [t for t in (args.tables or "").split(",") if t]
    request = request_resync(
        source=args.source, source_db=urls[args.source], target_db=urls[args.target], tables=tables
    )
    if request.gap is not None:
        print(f"accepted: {request.gap.sentence(args.source)}")
    print(
        f"re-sync {request.snapshot_id} of {', '.join(request.tables)} requested from "
        f"{args.source}; {args.target} reports re-syncing until its last chunk is applied"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from switchyard.dialog.evaluation import run_eval

    return run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    from switchyard.devenv import cli as dev_cli
    from switchyard.snapshots import cli as snapshot_cli

    parser = argparse.ArgumentParser(
        prog="switchyard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="serve the REST API (settings from SWITCHYARD_* variables)")
    api.set_defaults(handler=_api)
    mig = sub.add_parser(
        "migrate",
        help="migrate the control-plane store and record new regions; "
        "with --region, migrate that region's store and record its initial role",
    )
    mig.add_argument("--region", help="a region name from the topology file")
    mig.set_defaults(handler=_migrate)
    run = sub.add_parser("runtime", help="serve a region's dialog runtime at its runtime_url")
    run.add_argument("--region", required=True, help="a region name from the topology file")
    run.set_defaults(handler=_runtime)
    ctl = sub.add_parser(
        "controller",
        help="run the failover loop from one vantage point (probe, and act when leader)",
    )
    ctl.add_argument("--vantage", required=True, help="a vantage point from the topology file")
    ctl.add_argument("--once", action="store_true", help="run one cycle and print its decision")
    ctl.set_defaults(handler=_controller)
    cdc = sub.add_parser("cdc", help="change data capture between regions through Kafka")
    cdc_sub = cdc.add_subparsers(dest="cdc_command", required=True)
    src = cdc_sub.add_parser("source", help="stream a region's changes to its topic")
    src.add_argument("--region", required=True, help="a region name from the topology file")
    src.set_defaults(handler=_cdc_run)
    snk = cdc_sub.add_parser(
        "sink", help="apply the other regions' changes to this region while it is a standby"
    )
    snk.add_argument("--region", required=True, help="a region name from the topology file")
    snk.set_defaults(handler=_cdc_run)
    rs = cdc_sub.add_parser(
        "resync",
        help="accept a gap and re-sync the target from the source by an incremental snapshot",
    )
    rs.add_argument("--source", required=True, help="the region whose changes are missing")
    rs.add_argument("--target", required=True, help="the standby to re-sync")
    rs.add_argument("--tables", help="comma-separated tables (default: every replicated table)")
    rs.set_defaults(handler=_cdc_resync)
    ev = sub.add_parser(
        "eval",
        help="golden questions: recall@5, citation accuracy, latency percentiles",
        description="Ask every golden question, against a running runtime (--url) or an index "
        "built here from a corpus folder (--corpus); exit 1 when recall@5 is under --min-recall.",
    )
    from switchyard.dialog.evaluation import add_arguments

    add_arguments(ev)
    ev.set_defaults(handler=_eval)
    snapshot_cli.add_parser(sub)
    dev_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"switchyard: configuration error: {exc}", file=sys.stderr)
        return 2
    except SwitchyardError as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
