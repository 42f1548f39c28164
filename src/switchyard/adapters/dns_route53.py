"""Amazon Route 53 behind the ``DnsProvider`` port, through boto3 (moto's server in tests).

Mapping (the only shapes ``records`` accepts; anything else at the name is ``FatalError``):

- An unweighted set is one simple record: no ``SetIdentifier``, its addresses as
  ``ResourceRecords``.
- A weighted set is one weighted record per address: ``SetIdentifier`` = the address,
  ``Weight`` = its weight, one ``ResourceRecord``, all with the set's TTL. Route 53 answers
  one of them per query in proportion to the weights.
- Failover (PRIMARY/SECONDARY), alias, latency, geo and multivalue records are not written
  and are refused on read: failover in Switchyard is decided by the controller, which then
  points the record at one region; Route 53 health checks would be a second, disagreeing
  decider.

Invariants:

- ``apply`` sends one change batch. It DELETEs the exact ``before`` records (Route 53 fails
  the whole batch if one differs from what is stored) and CREATEs the new ones (fails if one
  exists). Where the batch's own DELETE already proves the slot free (the same record, or
  any weighted record once a simple one is deleted: Route 53 allows no mix) it UPSERTs
  instead, equally safe, and moto then does not refuse to re-create a record it once held
  (moto still does for a plain CREATE of a record deleted earlier). Weighted members
  that stay identical are left out of the batch. Before sending, the adapter reads the name
  and compares it with each ``before`` (a clear ``ConflictError`` naming the record; and the
  only check on moto, whose DELETE does not compare values with what is stored).
- Credentials are :class:`~switchyard.domain.secrets.Secret` values revealed only to build
  the boto3 client, on first use (constructing the adapter does no I/O); with none given,
  boto3's default chain (environment, instance role) applies. Nothing here logs.
- Errors: unreachable endpoint, timeouts, throttling and 5xx -> ``TransientError``; refused
  or missing credentials and invalid requests -> ``FatalError``; an unknown hosted zone ->
  ``NotFoundError``; a batch Route 53 rejects because a record changed -> ``ConflictError``.
- Propagation: Route 53 stores a batch at once but serves it from its name servers only
  when the change is ``INSYNC``. ``apply`` polls ``GetChange`` on the injected clock until
  then, for at most ``change_wait_seconds`` (short, so a saga step stays inside its lease),
  and remembers each name's last change; ``answer`` reports that change's status again
  (one ``GetChange``, until ``INSYNC``), so a change still ``PENDING`` is never verified.
  A change made by another process is unknown here; its name servers' answers remain.
- ``answer`` never reads the API's stored record (that would verify by construction): it
  asks every authoritative name server over DNS, without recursion, for an authoritative
  answer. Which servers: ``name_servers`` (``(host, port)``; tests point them at a local
  server) or, by default, the hosted zone's delegation set from ``GetHostedZone`` on port
  53, read once. Host names are resolved by the system resolver at each ask. An unresolvable
  or unreachable server is ``TransientError``; a reply without the AA flag ``FatalError``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from switchyard.adapters.dns_rfc2136 import Endpoint, query_a
from switchyard.domain.dns import (
    Answer,
    Change,
    ChangeStatus,
    RecordSet,
    ServerAnswer,
    check_before,
    check_name,
    in_zone,
)
from switchyard.domain.secrets import Secret
from switchyard.errors import (
    ConflictError,
    FatalError,
    NotFoundError,
    TransientError,
)
from switchyard.ports.clock import Clock

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_CHANGE_WAIT_SECONDS = 3.0
DEFAULT_POLL_SECONDS = 1.0  # GetChange is rate-limited (5 requests/s per account)
IN_SYNC = "INSYNC"
_UNMANAGED_KEYS = (
    "AliasTarget",
    "Failover",
    "Region",
    "GeoLocation",
    "GeoProximityLocation",
    "MultiValueAnswer",
    "CidrRoutingConfig",
    "TrafficPolicyInstanceId",
)
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
    }
)
_CONFLICT_HINTS = ("already exists", "not found", "do not match", "but it was not found")


@dataclass(frozen=True)
class AwsCredentials:
    """An access key pair; both parts are Secrets, so neither reaches a repr or a log."""

    access_key_id: Secret
    secret_access_key: Secret


class Route53DnsProvider:
    """One Route 53 hosted zone; see the module docstring for the mapping and invariants."""

    supports_weights = True

    def __init__(
        self,
        zone: str,
        hosted_zone_id: str,
        *,
        credentials: AwsCredentials | None = None,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = 3,
        name: str = "route53",
        name_servers: Sequence[tuple[str, int]] | None = None,
        clock: Clock | None = None,
        change_wait_seconds: float = DEFAULT_CHANGE_WAIT_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        if name_servers is not None and not name_servers:
            raise ValueError(f"{name}: name_servers must list at least one server, or be None")
        self.zone = check_name(zone)
        self.name = name
        self._zone_id = hosted_zone_id
        self._credentials = credentials
        self._endpoint_url = endpoint_url
        self._region = region
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._lock = threading.Lock()  # one read-compare-submit at a time
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._servers = tuple(name_servers) if name_servers is not None else None
        if clock is None:
            from switchyard.adapters.clock import SystemClock

            clock = SystemClock()
        self._clock = clock
        self._change_wait = change_wait_seconds
        self._poll = poll_seconds
        self._changes: dict[str, ChangeStatus] = {}  # owner -> the last change made there
        self._changes_lock = threading.Lock()

    def records(self, name: str) -> tuple[RecordSet, ...]:
        current = self._read(self._owner(name))
        return () if current is None else (current,)

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        names = [self._owner(change.name) for change in changes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: two changes to the same record in one batch")
        with self._lock:
            for change in changes:
                check_before(change, self._read(change.name))
            batch = [step for change in changes for step in _batch(change)]
            subject = "; ".join(change.describe() for change in changes)
            submitted: dict[str, Any] = self._call(
                f"updating {subject}",
                lambda client: client.change_resource_record_sets(
                    HostedZoneId=self._zone_id,
                    ChangeBatch={"Comment": "switchyard", "Changes": batch},
                ),
            )
            status = _change_status(submitted)
            self._remember(names, status, submitted=True)
        self._remember(names, self._await_sync(status))

    def answer(self, name: str) -> Answer:
        owner = self._owner(name)
        change = self._refresh(owner)
        asked = [self._ask(host, port, owner) for host, port in self._name_servers()]
        return Answer(tuple(asked), change)

    def _await_sync(self, status: ChangeStatus) -> ChangeStatus:
        """Poll ``GetChange`` until the change is INSYNC or ``change_wait_seconds`` pass.

        The batch is stored by then, so a failed poll ends the wait rather than failing
        ``apply``: ``answer`` asks for the change's status again.
        """
        deadline = self._clock.now() + timedelta(seconds=self._change_wait)
        while not status.settled:
            left = (deadline - self._clock.now()).total_seconds()
            if left <= 0:
                return status
            self._clock.sleep(min(self._poll, left))
            try:
                status = self._get_change(status.id)
            except TransientError:
                return status
        return status

    def _refresh(self, owner: str) -> ChangeStatus | None:
        """The last change made at ``owner`` by this adapter, asked again unless settled."""
        with self._changes_lock:
            known = self._changes.get(owner)
        if known is None or known.settled:
            return known
        status = self._get_change(known.id)
        self._remember([owner], status)
        return status

    def _remember(
        self, owners: Sequence[str], status: ChangeStatus, *, submitted: bool = False
    ) -> None:
        """Record ``status`` for ``owners``: a just-submitted change replaces whatever was
        known there; a later status only updates the same change (never a newer one's)."""
        with self._changes_lock:
            for owner in owners:
                known = self._changes.get(owner)
                if submitted or (known is not None and known.id == status.id):
                    self._changes[owner] = status

    def _get_change(self, change_id: str) -> ChangeStatus:
        reply: dict[str, Any] = self._call(
            f"reading change {change_id}", lambda client: client.get_change(Id=change_id)
        )
        return _change_status(reply)

    def _name_servers(self) -> tuple[tuple[str, int], ...]:
        """The configured name servers, or the hosted zone's delegation set (read once)."""
        if self._servers is None:
            zone: dict[str, Any] = self._call(
                "reading the delegation set",
                lambda client: client.get_hosted_zone(Id=self._zone_id),
            )
            names = zone.get("DelegationSet", {}).get("NameServers", [])
            if not names:
                raise FatalError(
                    f"{self._where()}: the hosted zone has no delegation set (a private "
                    "zone?); configure name_servers to verify answers"
                )
            self._servers = tuple((str(ns).rstrip(".").lower(), 53) for ns in names)
        return self._servers

    def _ask(self, host: str, port: int, owner: str) -> ServerAnswer:
        """One name server's authoritative answer for ``owner`` A."""
        label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        address = _resolve(host, port, f"{self.name} name server {label}")
        provider = self.name if address == host else f"{self.name} ({host})"
        values, _ = query_a(
            Endpoint(provider, address, port, self._timeout), owner, tsig=None, transport="udp"
        )
        return ServerAnswer(label, values)

    def _read(self, owner: str) -> RecordSet | None:
        found = [rr for rr in self._list(owner) if rr.get("Type") == "A"]
        if not found:
            return None
        for rr in found:
            unmanaged = [key for key in _UNMANAGED_KEYS if key in rr]
            if unmanaged:
                raise FatalError(
                    f"{self._where()}: {owner} A uses {', '.join(unmanaged)}, which "
                    "Switchyard does not manage"
                )
        try:
            return _parse(owner, found)
        except ValueError as exc:
            raise FatalError(f"{self._where()}: cannot represent {owner} A: {exc}") from None

    def _list(self, owner: str) -> Iterator[dict[str, Any]]:
        """Every record set named ``owner`` of type A, following pagination."""
        start: dict[str, str] = {"StartRecordName": owner, "StartRecordType": "A"}
        while True:
            page: dict[str, Any] = self._call(
                f"reading {owner}", partial(self._list_page, start=dict(start))
            )
            for rr in page.get("ResourceRecordSets", []):
                if _unescape(str(rr.get("Name", ""))).lower() != owner:
                    return
                yield rr
            if not page.get("IsTruncated"):
                return
            start = {
                "StartRecordName": page["NextRecordName"],
                "StartRecordType": page["NextRecordType"],
            }
            if "NextRecordIdentifier" in page:
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def _list_page(self, client: Any, *, start: dict[str, str]) -> dict[str, Any]:
        page: dict[str, Any] = client.list_resource_record_sets(
            HostedZoneId=self._zone_id, MaxItems="100", **start
        )
        return page

    def _call(self, action: str, call: Callable[[Any], T]) -> T:
        with self._mapped_errors(action):
            return call(self._boto())

    def _boto(self) -> Any:
        """The boto3 client, built on first use (importing boto3 costs ~0.3 s)."""
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                keys: dict[str, str] = {}
                if self._credentials is not None:
                    keys = {
                        "aws_access_key_id": self._credentials.access_key_id.reveal(),
                        "aws_secret_access_key": self._credentials.secret_access_key.reveal(),
                    }
                session = boto3.session.Session(region_name=self._region, **keys)
                self._client = session.client(
                    "route53",
                    endpoint_url=self._endpoint_url,
                    config=Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"max_attempts": self._max_attempts, "mode": "standard"},
                    ),
                )
            return self._client

    @contextmanager
    def _mapped_errors(self, action: str) -> Iterator[None]:
        from botocore import exceptions as boto_errors

        where = self._where()
        try:
            yield
        except boto_errors.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = " ".join(str(error.get("Message", "")).split())
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code == "NoSuchHostedZone":
                raise NotFoundError(f"{where}: hosted zone not found {action}") from exc
            if code == "InvalidChangeBatch" and any(h in message for h in _CONFLICT_HINTS):
                raise ConflictError(
                    f"{where}: a record changed since it was read; not applied: {action}: {message}"
                ) from exc
            if code in _TRANSIENT_CODES or status >= 500:
                raise TransientError(f"{where}: {code or status} {action}") from exc
            raise FatalError(f"{where}: {code or status} {action}: {message}") from exc
        except (boto_errors.ConnectionError, boto_errors.HTTPClientError) as exc:
            raise TransientError(f"{where}: unreachable {action}: {type(exc).__name__}") from exc
        except boto_errors.NoCredentialsError as exc:
            raise FatalError(f"{where}: no AWS credentials {action}") from exc
        except boto_errors.BotoCoreError as exc:
            raise FatalError(f"{where}: failed {action}: {type(exc).__name__}") from exc

    def _owner(self, name: str) -> str:
        owner = check_name(name)
        if not in_zone(owner, self.zone):
            raise ValueError(f"{self.name}: {name} is outside zone {self.zone}")
        return owner

    def _where(self) -> str:
        endpoint = self._endpoint_url or f"AWS {self._region}"
        return f"{self.name} {endpoint} zone {self._zone_id}"

    def __repr__(self) -> str:
        return (
            f"Route53DnsProvider(zone={self.zone!r}, hosted_zone_id={self._zone_id!r}, "
            f"endpoint_url={self._endpoint_url!r})"
        )


def _change_status(reply: dict[str, Any]) -> ChangeStatus:
    """The ``ChangeInfo`` of a ChangeResourceRecordSets or GetChange reply."""
    info = reply.get("ChangeInfo", {})
    change_id = str(info.get("Id", "")).removeprefix("/change/")
    status = str(info.get("Status", ""))
    if not change_id or not status:
        raise FatalError(f"route53: a reply without ChangeInfo Id and Status: {sorted(info)}")
    return ChangeStatus(id=change_id, status=status, settled=status == IN_SYNC)


def _resolve(host: str, port: int, what: str) -> str:
    """``host`` if it is an address, else its first address from the system resolver."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"{what}: cannot resolve {host}: {exc}") from exc
    return str(found[0][4][0])


def _parse(owner: str, found: list[dict[str, Any]]) -> RecordSet:
    """One RecordSet from a simple record or a group of weighted ones (``ValueError`` if not)."""
    simple = [rr for rr in found if "SetIdentifier" not in rr]
    members = [rr for rr in found if "SetIdentifier" in rr]
    if simple and members:
        raise ValueError("a simple record next to weighted ones")
    if simple:
        (rr,) = simple
        return RecordSet(name=owner, rtype="A", ttl=int(rr["TTL"]), values=_values(rr))
    ttls = {int(rr["TTL"]) for rr in members}
    if len(ttls) != 1:
        raise ValueError(f"weighted records disagree on the TTL: {sorted(ttls)}")
    values: list[str] = []
    weights: list[int] = []
    for rr in members:
        addresses = _values(rr)
        if "Weight" not in rr or addresses != (rr["SetIdentifier"],):
            raise ValueError(
                f"record {rr['SetIdentifier']!r} is not one weighted address named after itself"
            )
        values.append(addresses[0])
        weights.append(int(rr["Weight"]))
    return RecordSet(
        name=owner, rtype="A", ttl=ttls.pop(), values=tuple(values), weights=tuple(weights)
    )


def _values(rr: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(record["Value"]) for record in rr.get("ResourceRecords", []))


def _aws_records(record: RecordSet) -> list[dict[str, Any]]:
    """The Route 53 record sets that represent ``record`` (see the module docstring)."""
    if record.weights is None:
        return [
            {
                "Name": record.name,
                "Type": "A",
                "TTL": record.ttl,
                "ResourceRecords": [{"Value": value} for value in record.values],
            }
        ]
    return [
        {
            "Name": record.name,
            "Type": "A",
            "SetIdentifier": value,
            "Weight": weight,
            "TTL": record.ttl,
            "ResourceRecords": [{"Value": value}],
        }
        for value, weight in zip(record.values, record.weights, strict=True)
    ]


def _batch(change: Change) -> list[dict[str, Any]]:
    """DELETE the old records exactly, then CREATE (or UPSERT what was deleted) the new ones."""
    old = _aws_records(change.before) if change.before is not None else []
    new = _aws_records(change.after) if change.after is not None else []
    unchanged = [rr for rr in old if rr in new]
    deleted = {rr.get("SetIdentifier") for rr in old}
    # Route 53 allows no weighted record beside a simple one, so deleting a simple record
    # proves every weighted slot at the name is free as well.
    frees_all = None in deleted
    steps = [{"Action": "DELETE", "ResourceRecordSet": rr} for rr in old if rr not in unchanged]
    for rr in new:
        if rr in unchanged:
            continue
        freed = frees_all or rr.get("SetIdentifier") in deleted
        steps.append({"Action": "UPSERT" if freed else "CREATE", "ResourceRecordSet": rr})
    return steps


def _unescape(name: str) -> str:
    r"""Route 53 returns some characters as octal escapes (``\052`` for ``*``)."""
    if "\\" not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name[i] == "\\" and name[i + 1 : i + 4].isdigit():
            out.append(chr(int(name[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(name[i])
            i += 1
    return "".join(out)
