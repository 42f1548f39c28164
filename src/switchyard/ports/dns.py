"""The GSLB DNS provider port: read the record sets at a name, apply planned changes, ask.

A provider only translates; ``switchyard.domain.dns.plan`` decides what to change. Every
adapter keeps these invariants (the suite in ``tests/contract/test_dns_provider.py`` checks
the in-memory twin, Knot over RFC 2136, PowerDNS, and Route 53 on moto for the API with a
real DNS server standing in for its name servers):

- ``records(name)`` returns the A record sets stored at owner ``name`` (at most one) as the
  authority holds them now, () when there are none. It is read from the server itself (an
  authoritative query or the provider's API), never from a cache in the adapter.
- ``apply(changes)`` is compare-and-set and all or nothing: each change's ``before`` must
  still be exactly what is stored at its (name, type) (None: nothing stored), otherwise
  ``ConflictError`` naming the record, and no change of the batch is made. An empty batch
  is a no-op that does no I/O. How each adapter gets the guarantee:

  - rfc2136: one UPDATE message whose prerequisites are the ``before`` sets (RFC 2136
    "RRset exists, value dependent" / "RRset does not exist"); the server checks them and
    applies the updates atomically. RFC 2136 prerequisites ignore TTLs, so there a ``before``
    that differs from the stored set only in its TTL is not detected.
  - powerdns: the API has no conditional write, so the adapter reads, compares and then
    sends one PATCH (atomic in PowerDNS). Between that read and the PATCH another writer's
    change can be overwritten; a lock closes the window between threads of one adapter, not
    between processes. The control plane has one writer (the lease holder), so the window
    only matters with a deposed leader still running.
  - route53: one change batch that DELETEs the exact old records and CREATEs the new ones;
    Route 53 rejects the whole batch if an old record differs or a new one exists. The
    adapter also compares first (a clear error, and the only check on moto, which does not
    compare DELETEs with what is stored).

- After ``apply`` returns, ``records`` reflects it at once, and so does ``answer`` for rfc2136
  and powerdns (the very next query). Route 53 stores a change at once but serves it only
  when the change is ``INSYNC``: its ``apply`` polls ``GetChange`` on the injected clock for
  a bounded time, and its ``answer`` reports the status (PENDING or INSYNC) beside what the
  name servers said, so verification can refuse a change still propagating.
- ``answer(name)`` asks the provider's authoritative server(s) over DNS, without recursion,
  for ``name`` A now and returns an :class:`~switchyard.domain.dns.Answer`: per server asked
  (``host:port``) the addresses it answered, sorted, () when it has none. For an unweighted
  set that is exactly its values; for a weighted set a non-empty subset of the positively
  weighted values (PowerDNS picks one per query; the twin returns all of them). rfc2136 and
  powerdns ask their one DNS server; route53 asks every configured name server (default: the
  hosted zone's delegation set, port 53), never the API: the API's stored record proves
  nothing about what resolvers are told. The twin, which has no server, names itself.
- Weighted sets are accepted only when ``supports_weights``; otherwise ``apply`` raises
  ``FatalError`` before any I/O.
- Names outside the provider's zone are a caller bug: ``ValueError``.
- Errors by category: unreachable server, timeout, 5xx or SERVFAIL -> ``TransientError``;
  refused, bad credentials or TSIG, unknown zone, records the adapter cannot represent
  (for example a Route 53 failover record or a foreign LUA record) -> ``FatalError``.
  Messages name the provider, server and record, never a key or password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from switchyard.domain.dns import Answer, Change, RecordSet


class DnsProvider(Protocol):
    """One authority for the GSLB zone; see the module docstring for the contract."""

    @property
    def name(self) -> str:
        """The provider kind, as in metrics and reasons: rfc2136, powerdns, route53, memory."""
        ...

    @property
    def supports_weights(self) -> bool:
        """Whether weighted record sets can be stored and answered."""
        ...

    def records(self, name: str) -> tuple[RecordSet, ...]:
        """The A record sets stored at ``name`` now (at most one), () when there are none."""
        ...

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply ``changes`` all or nothing if every ``before`` is current, else ConflictError."""
        ...

    def answer(self, name: str) -> Answer:
        """What the authoritative server(s) answer for ``name`` A now, server by server."""
        ...
