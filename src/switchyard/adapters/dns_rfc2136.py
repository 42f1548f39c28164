"""An RFC 2136 server (Knot, BIND, ...) behind the ``DnsProvider`` port, through dnspython.

Invariants:

- Every write is one TSIG-signed UPDATE whose prerequisites carry the compare-and-set:
  "RRset exists (value dependent)" with the ``before`` addresses, or "RRset does not exist"
  for a create. The server checks every prerequisite and applies the whole message or none
  of it; a failed prerequisite (YXRRSET, NXRRSET, NXDOMAIN) is a ``ConflictError`` naming
  the records of the batch. Prerequisites ignore TTLs (RFC 2136 section 2.4.2).
- ``records`` is a TSIG-signed, non-recursive query to the same server that must come back
  authoritative (AA); ``answer`` is the same query unsigned over UDP, as a resolver asks.
- The TSIG secret lives in a :class:`~switchyard.domain.secrets.Secret` and is revealed
  only to build a ``dns.tsig.Key`` for one message; the key object is never kept (its
  repr shows the secret), and no error message names anything but the key's name.
- Weighted record sets are refused (``FatalError``) before any I/O: plain DNS has no
  weights, and storing only the addresses would not read back as what was written.
- Every exchange has a timeout. Refused connection, timeout or SERVFAIL ->
  ``TransientError``; a TSIG key, signature or time the server rejects, NOTAUTH, REFUSED,
  a non-authoritative answer -> ``FatalError``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update

from switchyard.domain.dns import (
    Answer,
    Change,
    RecordSet,
    ServerAnswer,
    check_name,
    in_zone,
    sort_addresses,
)
from switchyard.domain.secrets import Secret
from switchyard.errors import ConflictError, FatalError, SwitchyardError, TransientError

DEFAULT_TIMEOUT_SECONDS = 2.0

_ALGORITHMS = frozenset(
    {
        dns.tsig.HMAC_SHA224,
        dns.tsig.HMAC_SHA256,
        dns.tsig.HMAC_SHA256_128,
        dns.tsig.HMAC_SHA384,
        dns.tsig.HMAC_SHA384_192,
        dns.tsig.HMAC_SHA512,
        dns.tsig.HMAC_SHA512_256,
        dns.tsig.HMAC_SHA1,
        dns.tsig.HMAC_MD5,
    }
)
_CONFLICT = frozenset(
    {dns.rcode.YXRRSET, dns.rcode.NXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN}
)


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key: its name (``switchyard-tsig.``), algorithm (``hmac-sha256``), base64 secret.

    Checked on construction (``ValueError`` naming the field, never the secret).
    """

    name: str
    algorithm: str
    secret: Secret

    def __post_init__(self) -> None:
        try:
            dns.name.from_text(self.name)
        except dns.exception.DNSException:
            raise ValueError(f"TSIG key name {self.name!r} is not a DNS name") from None
        if dns.name.from_text(self.algorithm) not in _ALGORITHMS:
            raise ValueError(f"TSIG algorithm {self.algorithm!r} is not supported")
        try:
            base64.b64decode(self.secret.reveal(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"TSIG key {self.name!r}: secret is not base64") from None

    def to_dns(self) -> dns.tsig.Key:
        """A dnspython key for one message; do not keep it (its repr shows the secret)."""
        return dns.tsig.Key(self.name, self.secret.reveal(), self.algorithm)


class Rfc2136DnsProvider:
    """The zone on one RFC 2136 server; see the module docstring for the invariants."""

    supports_weights = False

    def __init__(
        self,
        zone: str,
        server: str,
        *,
        tsig: TsigKey,
        port: int = 53,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: Literal["tcp", "udp"] = "tcp",
        name: str = "rfc2136",
    ) -> None:
        self.zone = check_name(zone)
        self.name = name
        self._server = server
        self._port = port
        self._tsig = tsig
        self._timeout = timeout
        self._transport = transport

    def records(self, name: str) -> tuple[RecordSet, ...]:
        owner = self._owner(name)
        values, ttl = query_a(self._endpoint(), owner, tsig=self._tsig, transport=self._transport)
        if not values:
            return ()
        try:
            return (RecordSet(name=owner, rtype="A", ttl=ttl, values=values),)
        except ValueError as exc:
            raise FatalError(f"{self._where()}: cannot represent {owner} A: {exc}") from None

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for change in changes:
            self._owner(change.name)
            if change.after is not None and change.after.weights is not None:
                raise FatalError(
                    f"{self.name}: cannot serve weighted answers for {change.name}: "
                    "plain DNS has no weights (use a powerdns or route53 provider)"
                )
        update = dns.update.UpdateMessage(self.zone)
        for change in changes:
            _add_change(update, change)
        subject = "; ".join(change.describe() for change in changes)
        response = exchange(
            self._endpoint(),
            update,
            f"updating {subject}",
            tsig=self._tsig,
            transport=self._transport,
        )
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode in _CONFLICT:
            raise ConflictError(
                f"{self._where()}: prerequisite failed ({dns.rcode.to_text(rcode)}), "
                f"a record changed since it was read; not applied: {subject}"
            )
        raise refusal(self._endpoint(), rcode, f"updating {subject}")

    def answer(self, name: str) -> Answer:
        endpoint = self._endpoint()
        values, _ = query_a(endpoint, self._owner(name), tsig=None, transport="udp")
        return Answer((ServerAnswer(endpoint.address, values),))

    def _endpoint(self) -> Endpoint:
        return Endpoint(self.name, self._server, self._port, self._timeout)

    def _owner(self, name: str) -> str:
        owner = check_name(name)
        if not in_zone(owner, self.zone):
            raise ValueError(f"{self.name}: {name} is outside zone {self.zone}")
        return owner

    def _where(self) -> str:
        return self._endpoint().where

    def __repr__(self) -> str:
        return (
            f"Rfc2136DnsProvider(zone={self.zone!r}, server={self._server!r}, "
            f"port={self._port}, tsig_key={self._tsig.name!r})"
        )


@dataclass(frozen=True)
class Endpoint:
    """A DNS server to talk to, and the provider name errors are prefixed with."""

    provider: str
    server: str
    port: int
    timeout: float

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port`` for an IPv6 address)."""
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{host}:{self.port}"

    @property
    def where(self) -> str:
        return f"{self.provider} {self.address}"


def query_a(
    endpoint: Endpoint,
    owner: str,
    *,
    tsig: TsigKey | None,
    transport: Literal["tcp", "udp"],
) -> tuple[tuple[str, ...], int]:
    """Ask ``endpoint`` for ``owner`` A without recursion; the addresses (sorted) and TTL.

    ``((), 0)`` when the name or the type does not exist. The answer must be authoritative
    (``FatalError`` otherwise): the server is asked about its own zone.
    """
    query = dns.message.make_query(owner, dns.rdatatype.A)
    query.flags &= ~dns.flags.RD
    response = exchange(endpoint, query, f"querying {owner} A", tsig=tsig, transport=transport)
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise refusal(endpoint, rcode, f"querying {owner} A")
    if not response.flags & dns.flags.AA:
        raise FatalError(f"{endpoint.where}: answer for {owner} A is not authoritative")
    try:
        rrset = response.find_rrset(
            response.answer, dns.name.from_text(owner), dns.rdataclass.IN, dns.rdatatype.A
        )
    except KeyError:
        return (), 0
    return sort_addresses([rdata.address for rdata in rrset]), rrset.ttl


def exchange(
    endpoint: Endpoint,
    message: dns.message.Message,
    action: str,
    *,
    tsig: TsigKey | None,
    transport: Literal["tcp", "udp"],
) -> dns.message.Message:
    """Send ``message`` (signed with ``tsig`` if given) and return the reply, errors mapped."""
    if tsig is not None:
        message.use_tsig(tsig.to_dns())
    where = endpoint.where
    key = f"TSIG key {tsig.name!r}" if tsig is not None else "no TSIG key"
    try:
        if transport == "tcp":
            return dns.query.tcp(
                message, endpoint.server, timeout=endpoint.timeout, port=endpoint.port
            )
        response, _ = dns.query.udp_with_fallback(
            message, endpoint.server, timeout=endpoint.timeout, port=endpoint.port
        )
        return response
    except dns.tsig.PeerError as exc:
        raise FatalError(f"{where}: server rejected {key} {action}: {exc}") from exc
    except (
        dns.tsig.BadSignature,
        dns.tsig.BadKey,
        dns.tsig.BadAlgorithm,
        dns.tsig.BadTime,
        dns.message.UnknownTSIGKey,
    ) as exc:
        raise FatalError(
            f"{where}: reply {action} failed TSIG verification with {key}: {type(exc).__name__}"
        ) from exc
    except dns.exception.Timeout as exc:
        raise TransientError(f"{where}: timed out {action}") from exc
    except (OSError, EOFError) as exc:
        raise TransientError(f"{where}: unreachable {action}: {type(exc).__name__}") from exc
    except dns.exception.DNSException as exc:
        raise TransientError(f"{where}: bad reply {action}: {type(exc).__name__}") from exc


def refusal(endpoint: Endpoint, rcode: dns.rcode.Rcode, action: str) -> SwitchyardError:
    """The error for a reply code that is neither success nor a failed prerequisite."""
    text = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.SERVFAIL:
        return TransientError(f"{endpoint.where}: SERVFAIL {action}")
    if rcode == dns.rcode.NOTAUTH:
        return FatalError(
            f"{endpoint.where}: NOTAUTH {action}: TSIG key not allowed or zone not served"
        )
    return FatalError(f"{endpoint.where}: {text} {action}")


def _add_change(update: dns.update.UpdateMessage, change: Change) -> None:
    """Prerequisite from ``before``, then the rrset from ``after``."""
    name, _ = change.key
    if change.before is None:
        update.absent(name, dns.rdatatype.A)
    else:
        # TTL 0 and class IN: "RRset exists (value dependent)", compared without TTLs.
        update.present(name, dns.rdataset.from_text_list("IN", "A", 0, list(change.before.values)))
        update.delete(name, dns.rdatatype.A)
    if change.after is not None:
        update.add(
            name,
            dns.rdataset.from_text_list("IN", "A", change.after.ttl, list(change.after.values)),
        )
