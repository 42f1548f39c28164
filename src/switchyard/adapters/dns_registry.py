"""The one table from a topology DNS provider ``kind`` to the adapter that serves it.

Adapters are imported when built, so a deployment that only uses Knot never imports boto3.
Secrets are read from the store at build time (one read per provider); a missing secret or
key is a ``ConfigError`` naming the topology field and the secret path, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

from switchyard.domain.dns import parse_server
from switchyard.domain.secrets import Secret
from switchyard.errors import ConfigError, NotFoundError
from switchyard.ports.clock import Clock
from switchyard.ports.dns import DnsProvider
from switchyard.ports.secrets import SecretStore
from switchyard.topology import PowerDnsProvider, Rfc2136Provider, Route53Provider

DnsProviderSpec = Rfc2136Provider | PowerDnsProvider | Route53Provider
Spec = TypeVar("Spec", Rfc2136Provider, PowerDnsProvider, Route53Provider)
_SOURCE = "topology"


def build_dns_provider(
    spec: DnsProviderSpec, zone: str, secrets: SecretStore, *, clock: Clock | None = None
) -> DnsProvider:
    """The adapter for ``spec``, serving ``zone`` (fully qualified), with its secrets read.

    ``clock`` paces the adapters that wait (Route 53 polling for INSYNC); default: the system's.
    """
    return _BUILDERS[spec.kind](spec, zone, secrets, clock)


def _rfc2136(
    spec: DnsProviderSpec, zone: str, secrets: SecretStore, clock: Clock | None
) -> DnsProvider:
    from switchyard.adapters.dns_rfc2136 import Rfc2136DnsProvider, TsigKey

    rfc = _expect(spec, Rfc2136Provider)
    field = "dns.providers[kind=rfc2136].tsig_secret"
    name, algorithm, secret = _read(secrets, rfc.tsig_secret, field, "name", "algorithm", "secret")
    try:
        key = TsigKey(name=name.reveal(), algorithm=algorithm.reveal(), secret=secret)
    except ValueError as exc:
        raise ConfigError(_SOURCE, field, f"secret {rfc.tsig_secret!r}: {exc}") from None
    return Rfc2136DnsProvider(zone, rfc.server, port=rfc.port, tsig=key)


def _powerdns(
    spec: DnsProviderSpec, zone: str, secrets: SecretStore, clock: Clock | None
) -> DnsProvider:
    from switchyard.adapters.dns_powerdns import PowerDnsApiProvider

    pdns = _expect(spec, PowerDnsProvider)
    field = "dns.providers[kind=powerdns].api_key_secret"
    (api_key,) = _read(secrets, pdns.api_key_secret, field, "api_key")
    return PowerDnsApiProvider(zone, str(pdns.api_url), api_key=api_key)


def _route53(
    spec: DnsProviderSpec, zone: str, secrets: SecretStore, clock: Clock | None
) -> DnsProvider:
    from switchyard.adapters.dns_route53 import AwsCredentials, Route53DnsProvider

    r53 = _expect(spec, Route53Provider)
    credentials = None
    if r53.credentials_secret is not None:
        field = "dns.providers[kind=route53].credentials_secret"
        key_id, secret_key = _read(
            secrets, r53.credentials_secret, field, "access_key_id", "secret_access_key"
        )
        credentials = AwsCredentials(access_key_id=key_id, secret_access_key=secret_key)
    servers = None
    if r53.name_servers is not None:
        servers = [parse_server(server) for server in r53.name_servers]  # checked at load
    return Route53DnsProvider(
        zone,
        r53.hosted_zone_id,
        credentials=credentials,
        endpoint_url=str(r53.endpoint_url) if r53.endpoint_url is not None else None,
        region=r53.aws_region,
        name_servers=servers,
        clock=clock,
        change_wait_seconds=r53.change_wait_seconds,
    )


_Builder = Callable[[DnsProviderSpec, str, SecretStore, Clock | None], DnsProvider]
_BUILDERS: Mapping[str, _Builder] = MappingProxyType(
    {"rfc2136": _rfc2136, "powerdns": _powerdns, "route53": _route53}
)


def _expect(spec: DnsProviderSpec, kind: type[Spec]) -> Spec:
    if not isinstance(spec, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(spec).__name__}")
    return spec


def _read(secrets: SecretStore, path: str, field: str, *keys: str) -> tuple[Secret, ...]:
    """The secrets under ``keys`` at ``path``; ConfigError names the field if one is missing."""
    try:
        value = secrets.read(path)
        return tuple(value.get(key) for key in keys)
    except NotFoundError as exc:
        raise ConfigError(_SOURCE, field, str(exc)) from None
