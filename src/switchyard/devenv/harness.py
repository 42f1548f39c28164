"""Bring the local two-region infrastructure up, report on it, and take it down.

``up`` is idempotent: a server whose recorded process runs and answers is left alone, so a
second ``make up`` (or a test session while ``make up`` runs) starts nothing. ``down`` stops
exactly the processes ``up`` recorded. A file lock serialises concurrent callers.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from switchyard.devenv.apiserver import ApiServer
from switchyard.devenv.broker import KafkaBroker
from switchyard.devenv.cdc import KINDS, CdcServer
from switchyard.devenv.controller import VANTAGES, ControllerServer
from switchyard.devenv.dns import KnotDns, PowerDns
from switchyard.devenv.layout import DevCredentials, DevLayout
from switchyard.devenv.postgres import PostgresCluster
from switchyard.devenv.process import PidFile, await_stop, request_stop, spawn, wait_until
from switchyard.devenv.prometheus import Prometheus
from switchyard.devenv.runtime import RuntimeServer
from switchyard.devenv.s3 import SeaweedS3
from switchyard.devenv.service import DevService
from switchyard.devenv.vault import OpenBao
from switchyard.errors import ConfigError

REGIONS = ("region-a", "region-b")
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    kind: str  # server (infrastructure) | app (Switchyard's own process)
    state: str  # running | starting | stopped
    pid: int | None
    rss_bytes: int | None
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpResult:
    name: str
    action: str  # started | already running
    seconds: float


class Harness:
    """Every local server and app of the two-region setup, with its data under ``layout.root``.

    Building one does no I/O beyond reading (or, the first time, creating) the 0600
    credentials file; servers start only in ``up``.
    """

    def __init__(self, layout: DevLayout) -> None:
        self.layout = layout
        self.creds = DevCredentials.load_or_create(layout.credentials_path)
        c = self.creds
        self.control_db = PostgresCluster("pg-control", "pg_control", "switchyard", layout, c)
        self.region_dbs = {
            region: PostgresCluster(
                f"pg-{region}", f"pg_{region.replace('-', '_')}", "dialog", layout, c
            )
            for region in REGIONS
        }
        self.kafka = KafkaBroker(layout)
        self.s3 = {region: SeaweedS3(region, layout, c) for region in REGIONS}
        self.knot = KnotDns(layout, c)
        self.pdns = PowerDns(layout, c)
        self.vault = OpenBao(layout, c)
        self.prometheus = Prometheus(layout)
        self.api = ApiServer(layout, self.control_db, self.vault)
        self.runtimes = {region: RuntimeServer(region, layout, self.vault) for region in REGIONS}
        self.controllers = {
            v: ControllerServer(v, layout, self.control_db, self.vault) for v in VANTAGES
        }
        self.cdc = {
            f"{kind}-{region}": CdcServer(kind, region, layout, self.vault)
            for region in REGIONS
            for kind in KINDS
        }

    @classmethod
    def from_env(cls) -> Harness:
        return cls(DevLayout.from_env())

    def services(self) -> list[DevService]:
        return [
            self.control_db,
            *self.region_dbs.values(),
            self.kafka,
            *self.s3.values(),
            self.knot,
            self.pdns,
            self.vault,
            self.prometheus,
        ]

    def apps(self) -> list[DevService]:
        """Switchyard's own processes, started by the demo (``up`` leaves them alone)."""
        return [
            self.api,
            *self.runtimes.values(),
            *self.controllers.values(),
            *self.cdc.values(),
        ]

    def select(self, names: Sequence[str] | None, *, default: list[DevService]) -> list[DevService]:
        if not names:
            return default
        known = {s.name: s for s in [*self.services(), *self.apps()]}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                "command line", "service", f"unknown {unknown}; known: {sorted(known)}"
            )
        return [known[n] for n in names]

    def pidfile(self, service: DevService) -> PidFile:
        return PidFile(self.layout.pidfile(service.name))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        path = self.layout.root / "run" / "harness.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def up(self, names: Sequence[str] | None = None) -> list[UpResult]:
        """Start what is not running; wait until every selected server answers."""
        with self._locked():
            started: dict[str, float] = {}
            selected = self.select(names, default=self.services())
            for service in selected:
                pidfile = self.pidfile(service)
                if pidfile.alive() is not None:
                    continue
                pidfile.remove()
                service.prepare()
                started[service.name] = time.monotonic()
                spawn(service.process(), pidfile, self.layout.log(service.name))
            results = []
            for service in selected:
                pidfile = self.pidfile(service)
                t0 = started.get(service.name, time.monotonic())
                wait_until(
                    service.ready,
                    timeout=getattr(service, "start_timeout_seconds", START_TIMEOUT_SECONDS),
                    alive=pidfile.running,
                    what=service.name,
                    log_path=self.layout.log(service.name),
                )
                if service.name in started:
                    service.configure()
                action = "started" if service.name in started else "already running"
                results.append(UpResult(service.name, action, time.monotonic() - t0))
            return results

    def down(self, names: Sequence[str] | None = None) -> list[str]:
        """Stop the recorded processes; returns those stopped, in reverse start order.

        Every server is asked to stop first and then awaited, so slow graceful shutdowns
        (SeaweedFS takes about two seconds) overlap instead of adding up.
        """
        with self._locked():
            selected = reversed(self.select(names, default=[*self.services(), *self.apps()]))
            asked = [
                (s, pid) for s in selected if (pid := request_stop(self.pidfile(s))) is not None
            ]
            for service, pid in asked:
                await_stop(self.pidfile(service), pid)
            return [service.name for service, _ in asked]

    def status(self) -> list[ServiceStatus]:
        out = []
        apps = self.apps()
        for service in [*self.services(), *apps]:
            kind = "app" if service in apps else "server"
            pid = self.pidfile(service).alive()
            if pid is None:
                out.append(ServiceStatus(service.name, kind, "stopped", None, None))
                continue
            state = "running" if service.ready() else "starting"
            out.append(
                ServiceStatus(
                    service.name,
                    kind,
                    state,
                    pid,
                    session_rss_bytes(pid),
                    dict(service.endpoints()),
                )
            )
        return out


def session_rss_bytes(leader: int) -> int:
    """Resident memory of a server and every process in its session (e.g. PostgreSQL's workers)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) != leader:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total
