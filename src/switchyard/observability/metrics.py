"""Prometheus metrics of the API, on a registry the app owns (no global registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
