"""The topology file: which regions exist and how to reach each of their systems.

Parsed once at start-up into frozen values. Secret material never appears in it: every
credential is a Vault KV path (``*_secret`` fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    model_validator,
)

from switchyard.config_errors import config_error
from switchyard.domain.dns import parse_server
from switchyard.domain.region import RegionRole
from switchyard.errors import ConfigError

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Port = Annotated[int, Field(ge=1, le=65535)]
SecretPath = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSpec(_Frozen):
    host: str
    port: Port
    name: str
    credentials_secret: SecretPath
    # Vault database-engine role whose leases the region's runtime holds; fencing the region
    # revokes every lease issued under it. None: static credentials only, nothing to revoke.
    lease_role: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None


class BucketSpec(_Frozen):
    endpoint: AnyHttpUrl
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    credentials_secret: SecretPath


class RegionSpec(_Frozen):
    name: Name
    runtime_url: AnyHttpUrl
    address: IPvAnyAddress  # what the GSLB record answers when this region serves
    initial_role: Literal[RegionRole.PRIMARY, RegionRole.STANDBY]
    database: DatabaseSpec
    bucket: BucketSpec


class Rfc2136Provider(_Frozen):
    kind: Literal["rfc2136"]
    server: str
    port: Port = 53
    tsig_secret: SecretPath


class PowerDnsProvider(_Frozen):
    kind: Literal["powerdns"]
    api_url: AnyHttpUrl
    api_key_secret: SecretPath


def _name_server(text: str) -> str:
    parse_server(text)  # ValueError names the entry
    return text


NameServer = Annotated[str, AfterValidator(_name_server)]


class Route53Provider(_Frozen):
    kind: Literal["route53"]
    hosted_zone_id: str
    credentials_secret: SecretPath | None = None
    endpoint_url: AnyHttpUrl | None = None  # None: AWS itself
    aws_region: str = "us-east-1"
    # The authoritative servers the failover's DNS check asks ("host" or "host:port", port 53
    # by default). None: the hosted zone's delegation set (GetHostedZone).
    name_servers: Annotated[tuple[NameServer, ...], Field(min_length=1)] | None = None
    # How long an update waits for Route 53 to report the change INSYNC before returning;
    # the verify step then keeps checking (keep it under failover.step_timeout_seconds).
    change_wait_seconds: Annotated[float, Field(ge=0, le=600)] = 3.0


DnsProviderSpec = Annotated[
    Rfc2136Provider | PowerDnsProvider | Route53Provider, Field(discriminator="kind")
]


class DnsSpec(_Frozen):
    zone: Annotated[str, Field(pattern=r"^([a-z0-9-]+\.)+$")]  # fully qualified, trailing dot
    record: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    ttl_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    providers: Annotated[tuple[DnsProviderSpec, ...], Field(min_length=1)]


class KafkaSpec(_Frozen):
    bootstrap_servers: str
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "switchyard"


class CanarySpec(_Frozen):
    """The deep probe's golden question and the document its answer must cite."""

    question: Annotated[str, Field(min_length=3, max_length=500)]
    expected_document: Annotated[str, Field(min_length=1, max_length=200)]


class ProbePolicy(_Frozen):
    interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 2.0
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    quorum: Literal["majority", "all"] = "majority"
    # An observation older than this many intervals no longer counts for its vantage.
    freshness_intervals: Annotated[float, Field(ge=1, le=100)] = 3.0
    canary: CanarySpec | None = None

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> ProbePolicy:
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError("timeout_seconds must be shorter than interval_seconds")
        return self


class FailoverSpec(_Frozen):
    """When the loop may fail over on its own, and what gates a target region."""

    mode: Literal["automatic", "manual"] = "automatic"
    # A region must have been primary this long before it can be failed away from.
    min_dwell_seconds: Annotated[float, Field(ge=0)] = 0.0
    # No automatic failover for this long after the previous one finished.
    cooldown_seconds: Annotated[float, Field(ge=0)] = 300.0
    max_lag_seconds: Annotated[float, Field(gt=0)] = 30.0
    max_generations_behind: Annotated[int, Field(ge=0)] = 1
    # A gate whose figure is not known yet (no CDC/snapshot reporting): block or allow.
    unknown_gates: Literal["block", "allow"] = "allow"
    step_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    lease_ttl_seconds: Annotated[float, Field(gt=0, le=600)] = 15.0
    # When neither the old primary's database recorded the fence nor Vault revoked its
    # runtime's logins, promote only after nothing of it answered a probe for this long. Set
    # it to at least the longest a cut-off runtime keeps its database login (the runtime's
    # contact timeout plus one credential TTL): a runtime cut off that long cannot write.
    isolation_timeout_seconds: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600.0

    @model_validator(mode="after")
    def _steps_fit_in_a_lease(self) -> FailoverSpec:
        # The leader renews its lease before each step; a step outliving the lease could
        # overlap with the next leader's attempt at the same step.
        if self.step_timeout_seconds >= self.lease_ttl_seconds:
            raise ValueError("step_timeout_seconds must be shorter than lease_ttl_seconds")
        # The wait must outlast a leader lease: a deposed leader's last probes land in it.
        if self.isolation_timeout_seconds <= self.lease_ttl_seconds:
            raise ValueError("isolation_timeout_seconds must be longer than lease_ttl_seconds")
        return self


class Topology(_Frozen):
    version: Literal[1]
    vantages: Annotated[tuple[Name, ...], Field(min_length=1)]
    regions: Annotated[tuple[RegionSpec, ...], Field(min_length=2)]
    dns: DnsSpec
    kafka: KafkaSpec
    probes: ProbePolicy = ProbePolicy()
    failover: FailoverSpec = FailoverSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError(f"region names must be unique, got {names}")
        primaries = [r.name for r in self.regions if r.initial_role is RegionRole.PRIMARY]
        if len(primaries) != 1:
            raise ValueError(f"exactly one region must have initial_role primary, got {primaries}")
        if len(set(self.vantages)) != len(self.vantages):
            raise ValueError("vantages must be unique")
        return self

    def region(self, name: str) -> RegionSpec:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)


def load_topology(path: Path) -> Topology:
    """Parse and validate the topology file; ConfigError names the file and the field."""
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise ConfigError(
            source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, "(top level)", "must be a mapping")
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        raise config_error(source, exc) from None
