"""Two regions and three controllers on in-memory adapters with one fake clock.

Faults are plain sets: ``world.unreachable[vantage]`` holds the regions that vantage's probes
cannot reach (a partition), ``world.down`` the regions that are dead for everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from switchyard.adapters.clock import FakeClock
from switchyard.adapters.control_memory import InMemoryControlStore
from switchyard.adapters.credentials_memory import InMemoryCredentialLeases
from switchyard.adapters.dns_memory import InMemoryDnsProvider
from switchyard.adapters.lease_memory import InMemoryLeaseStore
from switchyard.adapters.regions_memory import InMemoryRegionChecks, InMemoryRegionDatabases
from switchyard.adapters.replication_memory import InMemoryReplicationMonitor
from switchyard.controller.loop import Controller, ControllerParts, CycleReport
from switchyard.controller.saga import Gslb, SagaParts, SagaRunner
from switchyard.controller.view import loop_settings
from switchyard.domain.dns import single
from switchyard.domain.probe import ProbeKind, ProbeResult
from switchyard.domain.region import Region, RegionRole
from switchyard.errors import TransientError
from switchyard.topology import FailoverSpec, Topology

ZONE = "gslb.example."
NAME = "chat.gslb.example."
ADDRESSES = {"region-a": "10.0.1.1", "region-b": "10.0.2.1"}
VANTAGES = ("region-a", "region-b", "witness")


class SwitchedCredentialLeases(InMemoryCredentialLeases):
    """The credentials twin behind a switch: while ``down``, Vault does not answer."""

    down = False

    def revoke_role(self, role: str) -> int:
        if self.down:
            raise TransientError("Vault unreachable: connection refused")
        return super().revoke_role(role)


class ScriptedProbe:
    """A probe whose result is whatever the world says about its vantage and region; when
    it answers, it reports the role and epoch the region's database records."""

    def __init__(self, world: World, vantage: str, target: str, kind: ProbeKind) -> None:
        self._world = world
        self._vantage = vantage
        self.target = target
        self.kind = kind

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        if self._world.sees_down(self._vantage, self.target):
            return ProbeResult(
                self.target, self.kind, False, timeout_seconds * 1000, "timeout", "no answer"
            )
        # As the runtime answers: with the role and epoch its own database records.
        state = self._world.databases.states.get(self.target)
        if state is None or self.target in self._world.databases.down:
            return ProbeResult(self.target, self.kind, True, 1.0, "ok", "ok")
        role, epoch = state.role.value, state.epoch
        return ProbeResult(self.target, self.kind, True, 1.0, "ok", "ok", role, epoch)


@dataclass
class World:
    topology: Topology
    clock: FakeClock = field(default_factory=FakeClock)
    down: set[str] = field(default_factory=set)
    unreachable: dict[str, set[str]] = field(default_factory=dict)
    crashed: set[str] = field(default_factory=set)  # controllers not running
    cdc: bool = False  # with a replication monitor (CDC lag gates, planned wait by position)

    def __post_init__(self) -> None:
        self.store = InMemoryControlStore(
            self.clock,
            [
                Region("region-a", RegionRole.PRIMARY, 1, self.clock.now()),
                Region("region-b", RegionRole.STANDBY, 0, self.clock.now()),
            ],
        )
        self.leases = InMemoryLeaseStore(self.clock)
        self.databases = InMemoryRegionDatabases(self.clock)
        self.databases.seed("region-a", RegionRole.PRIMARY, 1)
        self.databases.seed("region-b", RegionRole.STANDBY, 0)
        self.checks = InMemoryRegionChecks(self.databases)
        self.dns = InMemoryDnsProvider(ZONE)
        from switchyard.controller.gslb import route_to

        route_to([self.dns], NAME, single(NAME, 30, ADDRESSES["region-a"]))
        self.credentials = SwitchedCredentialLeases(
            ["region-a-runtime", "region-b-runtime"], clock=self.clock
        )
        self.runtime_lease = self.credentials.issue("region-a-runtime")
        self.replication = InMemoryReplicationMonitor() if self.cdc else None
        self.settings = loop_settings(self.topology)
        self.controllers = {v: self._controller(v) for v in VANTAGES}

    def sees_down(self, vantage: str, region: str) -> bool:
        return region in self.down or region in self.unreachable.get(vantage, set())

    def _controller(self, vantage: str) -> Controller:
        saga = SagaRunner(
            SagaParts(
                store=self.store,
                leases=self.leases,
                regions=self.databases,
                checks=self.checks,
                gslb=Gslb(NAME, 30, ADDRESSES, [self.dns]),
                credentials=self.credentials,
                lease_roles={"region-a": "region-a-runtime", "region-b": "region-b-runtime"},
                clock=self.clock,
                step_timeout_seconds=self.settings.step_timeout_seconds,
                lease_ttl_seconds=self.settings.lease_ttl_seconds,
                isolation_timeout_seconds=self.settings.isolation_timeout_seconds,
                observation_gap_seconds=self.settings.rule.freshness.total_seconds(),
                replication=self.replication,
            )
        )
        probes = [
            ScriptedProbe(self, vantage, region, kind)
            for region in ADDRESSES
            for kind in (ProbeKind.HTTP, ProbeKind.CANARY)
        ]
        readiness = [ScriptedProbe(self, vantage, region, ProbeKind.HTTP) for region in ADDRESSES]
        return Controller(
            ControllerParts(
                vantage=vantage,
                store=self.store,
                leases=self.leases,
                health_probes=probes,
                readiness_probes=readiness,
                saga=saga,
                regions=self.databases,
                clock=self.clock,
                settings=self.settings,
                replication=self.replication,
            )
        )

    def kill(self, region: str) -> None:
        """The region dies for everyone: probes fail, its runtime and database are gone."""
        self.down.add(region)
        self.checks.broken.add(region)
        self.databases.down.add(region)

    def tick(self, seconds: float = 1.0) -> list[CycleReport]:
        """Every running controller runs one cycle, then time moves on."""
        reports = [
            asyncio.run(c.cycle()) for v, c in self.controllers.items() if v not in self.crashed
        ]
        self.clock.advance(seconds)
        return reports

    def run(self, cycles: int) -> list[CycleReport]:
        return [r for _ in range(cycles) for r in self.tick()]

    def roles(self) -> dict[str, tuple[str, int]]:
        return {r.name: (r.role.value, r.epoch) for r in self.store.regions()}

    def answer(self) -> tuple[str, ...]:
        return self.dns.answer(NAME).addresses


def topology(**failover: object) -> Topology:
    """A two-region topology with 1 s probes, threshold 3, majority of three vantages."""
    from switchyard.devenv.layout import repo_root
    from switchyard.topology import load_topology

    base = load_topology(repo_root() / "config" / "topology.example.yaml")
    probes = base.probes.model_copy(update={"interval_seconds": 1.0, "timeout_seconds": 0.5})
    spec = FailoverSpec(**{"cooldown_seconds": 60.0, **failover})  # type: ignore[arg-type]
    return base.model_copy(update={"probes": probes, "failover": spec})


def decisions(reports: Iterable[CycleReport]) -> list[str]:
    return [r.decision.code.value for r in reports if r.decision is not None]
