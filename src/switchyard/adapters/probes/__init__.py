"""Probe adapters: HTTP (plain and readiness), TCP, PostgreSQL, DNS and the RAG canary.

Every probe satisfies :class:`switchyard.ports.probe.Probe`: it returns a result within its
deadline and never raises. HTTP-based probes share one keep-alive session owned by
:class:`ProbeClients`; nothing opens a connection until a probe runs.
"""

from __future__ import annotations

from switchyard.adapters.probes.canary_probe import CanaryAnswer, CanaryProbe
from switchyard.adapters.probes.clients import ProbeClients
from switchyard.adapters.probes.dns_probe import DnsProbe
from switchyard.adapters.probes.http_probe import HttpProbe, Readiness, ReadinessProbe
from switchyard.adapters.probes.postgres_probe import PostgresProbe
from switchyard.adapters.probes.tcp_probe import TcpProbe

__all__ = [
    "CanaryAnswer",
    "CanaryProbe",
    "DnsProbe",
    "HttpProbe",
    "PostgresProbe",
    "ProbeClients",
    "Readiness",
    "ReadinessProbe",
    "TcpProbe",
]
