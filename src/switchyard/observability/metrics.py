"""Prometheus metrics of the API, on a registry the app owns (no global registry)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from switchyard.domain.health import Observation
from switchyard.domain.replication import ReplicationLag
from switchyard.domain.saga import FailoverRecord, Step, StepOutcome

if TYPE_CHECKING:
    from switchyard.snapshots.status import SnapshotFigures


@dataclass(frozen=True)
class ApiMetrics:
    """The API's metrics on a registry of their own (one per app, so tests never collide).

    Labels stay low-cardinality: ``route`` is the matched path template, never the raw path.
    """

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    build: Gauge

    @classmethod
    def create(cls, version: str) -> ApiMetrics:
        registry = CollectorRegistry()
        requests = Counter(
            "switchyard_http_requests",
            "HTTP requests answered, by route template and status",
            ["route", "method", "status"],
            registry=registry,
        )
        latency = Histogram(
            "switchyard_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        build = Gauge(
            "switchyard_build_info",
            "Always 1; labels carry the version",
            ["version"],
            registry=registry,
        )
        build.labels(version=version).set(1)
        return cls(registry, requests, latency, build)


@dataclass(frozen=True)
class DialogMetrics:
    """The dialog runtime's own metrics, on the registry of its ``ApiMetrics``.

    Labels: ``kind`` (answer kind), ``stage``, ``tool``, ``result``, ``lane`` (chat, canary)
    and ``reason`` come from fixed sets; nothing per session or per query.
    """

    answers: Counter
    confidence: Histogram
    stage_seconds: Histogram
    index_generation: Gauge
    index_chunks: Gauge
    epoch: Gauge
    role: Gauge
    llm_in_flight: Gauge
    llm_waiting: Gauge
    tool_calls: Counter
    in_flight: Gauge
    queued: Gauge
    shed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> DialogMetrics:
        return cls(
            answers=Counter(
                "switchyard_dialog_answers",
                "Chat answers given, by how they were produced",
                ["kind"],
                registry=registry,
            ),
            confidence=Histogram(
                "switchyard_dialog_answer_confidence",
                "Retrieval confidence of answers (0 to 1)",
                registry=registry,
                buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            ),
            stage_seconds=Histogram(
                "switchyard_dialog_stage_duration_seconds",
                "Time spent per stage of a chat request",
                ["stage"],
                registry=registry,
                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            ),
            index_generation=Gauge(
                "switchyard_dialog_index_generation",
                "Generation of the live search index",
                registry=registry,
            ),
            index_chunks=Gauge(
                "switchyard_dialog_index_chunks",
                "Chunks in the live search index",
                registry=registry,
            ),
            epoch=Gauge(
                "switchyard_dialog_epoch",
                "The region's epoch as last read from its database",
                registry=registry,
            ),
            role=Gauge(
                "switchyard_dialog_role",
                "1 for the region's current role (as last read from its database)",
                ["role"],
                registry=registry,
            ),
            llm_in_flight=Gauge(
                "switchyard_dialog_llm_in_flight",
                "LLM calls in progress",
                registry=registry,
            ),
            llm_waiting=Gauge(
                "switchyard_dialog_llm_waiting",
                "Requests waiting for an LLM slot",
                registry=registry,
            ),
            tool_calls=Counter(
                "switchyard_dialog_tool_calls",
                "Tool handler calls, by tool and result (ok or an error code)",
                ["tool", "result"],
                registry=registry,
            ),
            in_flight=Gauge(
                "switchyard_dialog_requests_in_flight",
                "Requests admitted and being served, by lane (chat, canary)",
                ["lane"],
                registry=registry,
            ),
            queued=Gauge(
                "switchyard_dialog_requests_queued",
                "Requests waiting for a slot, by lane",
                ["lane"],
                registry=registry,
            ),
            shed=Counter(
                "switchyard_dialog_requests_shed",
                "Requests refused with 503 overloaded, by lane and reason (queue_full, "
                "queue_timeout)",
                ["lane", "reason"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ControllerMetrics:
    """A controller's metrics. Labels: region, vantage, probe kind, reason code, step, provider,
    trigger and result, all from fixed sets."""

    registry: CollectorRegistry
    probe_ok: Gauge
    probe_latency: Histogram
    leader: Gauge
    decisions: Counter
    failovers: Counter
    step_seconds: Histogram
    dns_update_seconds: Histogram
    replication_gauges: ReplicationGauges
    fence_unconfirmed: Counter

    @classmethod
    def create(
        cls, registry: CollectorRegistry | None = None, regions: Sequence[str] = ()
    ) -> ControllerMetrics:
        """``regions``: their fence counters start at 0, so the first unconfirmed fence is an
        increase an alert sees (a series born at 1 is not)."""
        registry = registry or CollectorRegistry()
        fence_unconfirmed = Counter(
            "switchyard_failover_fence_unconfirmed",
            "Fence attempts the old primary's database did not record, by the proof the "
            "failover went on with (none: held at the fence, not promoted)",
            ["region", "proof"],
            registry=registry,
        )
        for region in regions:
            for proof in FENCE_UNCONFIRMED_PROOFS:
                fence_unconfirmed.labels(region=region, proof=proof)
        return cls(
            fence_unconfirmed=fence_unconfirmed,
            registry=registry,
            probe_ok=Gauge(
                "switchyard_region_probe_ok",
                "1 when the last probe of this kind from this vantage point succeeded",
                ["region", "vantage", "kind"],
                registry=registry,
            ),
            probe_latency=Histogram(
                "switchyard_probe_duration_seconds",
                "Probe latency by region, vantage point and kind",
                ["region", "vantage", "kind"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            ),
            leader=Gauge(
                "switchyard_controller_leader",
                "1 while this controller holds the leader lease",
                ["vantage"],
                registry=registry,
            ),
            decisions=Counter(
                "switchyard_decisions",
                "Loop decisions by reason code",
                ["code"],
                registry=registry,
            ),
            failovers=Counter(
                "switchyard_failovers",
                "Failovers finished, by trigger and result",
                ["trigger", "result"],
                registry=registry,
            ),
            step_seconds=Histogram(
                "switchyard_failover_step_duration_seconds",
                "Time each failover step took",
                ["step", "result"],
                registry=registry,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            ),
            dns_update_seconds=Histogram(
                "switchyard_dns_update_duration_seconds",
                "Time to apply a GSLB change, by provider",
                ["provider"],
                registry=registry,
                buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            ),
            replication_gauges=ReplicationGauges.create(registry),
        )

    def replication(self, lag: ReplicationLag) -> None:
        self.replication_gauges.observe(lag)

    def observed(self, vantage: str, observations: Sequence[Observation]) -> None:
        for o in observations:
            labels = {"region": o.region, "vantage": vantage, "kind": o.kind}
            self.probe_ok.labels(**labels).set(1 if o.ok else 0)
            if o.latency_ms is not None:
                self.probe_latency.labels(**labels).observe(o.latency_ms / 1000)

    def step_done(
        self, record: FailoverRecord, step: Step, outcome: StepOutcome, seconds: float
    ) -> None:
        """``SagaParts.on_step``: a step's duration, and the DNS update's per provider."""
        self.step_seconds.labels(step=step.value, result="ok" if outcome.ok else "failed").observe(
            seconds
        )
        detail = outcome.detail or {}
        if step is Step.FENCE_SOURCE and detail.get("fence_confirmed") is False:
            proof = detail.get("fence_proof")
            self.fence_unconfirmed.labels(
                region=record.source, proof=proof if isinstance(proof, str) else "none"
            ).inc()
        if step is Step.UPDATE_DNS and outcome.ok and outcome.detail:
            for key, value in outcome.detail.items():
                if key.endswith("_seconds") and isinstance(value, int | float):
                    self.dns_update_seconds.labels(provider=key.removesuffix("_seconds")).observe(
                        value
                    )


# The ``proof`` label of ``switchyard_failover_fence_unconfirmed_total``: none while the
# failover is held at the fence, else the proof it was promoted on (domain/fence.py).
FENCE_UNCONFIRMED_PROOFS = ("none", "leases_revoked", "isolation_timeout")


@dataclass(frozen=True)
class ReplicationGauges:
    """Lag per region pair (set by the controller each cycle, by the API at each read)."""

    lag_bytes: Gauge
    lag_seconds: Gauge
    consumer_lag: Gauge
    heartbeat_age: Gauge
    slot_active: Gauge
    gap_open: Gauge
    dead_letters: Gauge
    snapshot_generation: Gauge
    snapshot_age: Gauge
    snapshot_behind: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReplicationGauges:
        pair = ["source", "target"]

        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        return cls(
            lag_bytes=gauge(
                "switchyard_replication_lag_bytes",
                "Source WAL position minus what its CDC slot has confirmed",
                pair,
            ),
            lag_seconds=gauge(
                "switchyard_replication_lag_seconds",
                "Source commit to applied in the target, for the last transaction applied",
                pair,
            ),
            consumer_lag=gauge(
                "switchyard_replication_consumer_lag_messages",
                "CDC records in the topic the target's sink has not processed",
                pair,
            ),
            heartbeat_age=gauge(
                "switchyard_replication_heartbeat_age_seconds",
                "Time since the source's last heartbeat was applied in the target",
                pair,
            ),
            slot_active=gauge(
                "switchyard_replication_slot_active",
                "1 while a CDC source streams from the region's slot, 0 when the slot is idle",
                ["region"],
            ),
            gap_open=gauge(
                "switchyard_replication_gap_open",
                "1 while the target's sink holds an unresolved gap in the source's changes",
                pair,
            ),
            dead_letters=gauge(
                "switchyard_replication_dead_letters",
                "CDC transactions the target's sink parked in the dead-letter topic",
                pair,
            ),
            snapshot_generation=gauge(
                "switchyard_snapshot_generation",
                "Index snapshot generation per region: newest in its bucket (kind=latest) and "
                "served by its runtime (kind=active)",
                ["region", "kind"],
            ),
            snapshot_age=gauge(
                "switchyard_snapshot_age_seconds",
                "Time since the snapshot generation a region serves was published",
                ["region"],
            ),
            snapshot_behind=gauge(
                "switchyard_snapshot_generations_behind",
                "Snapshot generations a region serves behind what the primary published",
                ["region"],
            ),
        )

    def observe(self, lag: ReplicationLag) -> None:
        pair = {"source": lag.source, "target": lag.target}
        for gauge, value in (
            (self.lag_bytes, lag.lag_bytes),
            (self.lag_seconds, lag.lag_seconds),
            (self.consumer_lag, lag.consumer_lag_messages),
            (self.heartbeat_age, lag.heartbeat_age_seconds),
        ):
            gauge.labels(**pair).set(float("nan") if value is None else value)
        if lag.slot_active is not None:
            self.slot_active.labels(region=lag.source).set(1 if lag.slot_active else 0)
        self.gap_open.labels(**pair).set(1 if lag.gap is not None else 0)
        self.dead_letters.labels(**pair).set(lag.dead_letters)

    def observe_snapshot(self, region: str, figures: SnapshotFigures) -> None:
        def value(v: float | None) -> float:
            return float("nan") if v is None else float(v)

        status = figures.status
        self.snapshot_generation.labels(region=region, kind="latest").set(
            value(status.latest_generation)
        )
        self.snapshot_generation.labels(region=region, kind="active").set(
            value(status.active_generation)
        )
        self.snapshot_age.labels(region=region).set(value(figures.age_seconds))
        self.snapshot_behind.labels(region=region).set(value(figures.generations_behind))


@dataclass(frozen=True)
class CdcMetrics:
    """A CDC source's or sink's own counters (``--metrics-port``)."""

    registry: CollectorRegistry
    published_rows: Counter
    applied_rows: Counter
    applied_transactions: Counter
    apply_delay: Histogram
    dead_letters: Counter
    stale_refused: Counter
    gaps: Counter

    @classmethod
    def create(cls) -> CdcMetrics:
        registry = CollectorRegistry()
        pair = ["source", "target"]
        return cls(
            registry=registry,
            published_rows=Counter(
                "switchyard_cdc_published_rows",
                "Row changes the source published (acknowledged or in flight)",
                ["source"],
                registry=registry,
            ),
            applied_rows=Counter(
                "switchyard_cdc_applied_rows", "Row changes applied", pair, registry=registry
            ),
            applied_transactions=Counter(
                "switchyard_cdc_applied_transactions",
                "Source transactions applied",
                pair,
                registry=registry,
            ),
            apply_delay=Histogram(
                "switchyard_cdc_apply_delay_seconds",
                "Source commit to applied in the target",
                pair,
                registry=registry,
                buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0),
            ),
            dead_letters=Counter(
                "switchyard_cdc_dead_letters",
                "Transactions or records parked in the dead-letter topic",
                pair,
                registry=registry,
            ),
            stale_refused=Counter(
                "switchyard_cdc_stale_epoch_refused",
                "Transactions refused because they came from an older epoch than the target's",
                pair,
                registry=registry,
            ),
            gaps=Counter(
                "switchyard_cdc_gaps",
                "Gaps detected in a source's changes, by reason",
                [*pair, "reason"],
                registry=registry,
            ),
        )
