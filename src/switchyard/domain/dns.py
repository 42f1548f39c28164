"""GSLB record sets, the changes between them, and the one planner that computes changes.

Every ``DnsProvider`` adapter speaks these values; none of them diffs on its own (the
external-dns split: one pure planner, providers only translate changes).

Invariants of :class:`RecordSet` (checked in ``__post_init__``, ``ValueError`` otherwise):

- ``name`` is a fully qualified owner name with a trailing dot, stored in lower case.
- ``rtype`` is ``"A"`` (the only type the GSLB manages today).
- ``1 <= ttl <= 86400``.
- ``values`` is a non-empty tuple of distinct IPv4 addresses in canonical text form, sorted
  by numeric address, so two sets with the same members compare equal whatever order they
  were given in.
- ``weights`` is None (every address answered) or one weight per address, each in 0..255,
  at least one positive; it is reordered together with ``values``. A weighted set and an
  unweighted one are different even when the weights are all equal: providers store them
  differently (a LUA record, per-address Route 53 records).

Invariants of :class:`Change`: a create has only ``after``, a delete only ``before``, an
update both, for the same (name, type) and with different contents.

An :class:`Answer` is what a provider's authoritative servers said, server by server, with the
provider's own status of its last change there; ``judge_answers`` decides from those alone
whether a failover's DNS move is verified (every change settled, every server answering
exactly the new address).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from switchyard.domain.audit import JsonValue
from switchyard.errors import ConflictError

RecordKey = tuple[str, str]
"""``(name, rtype)``: at most one record set per key in a zone."""

SUPPORTED_TYPES = frozenset({"A"})
MAX_TTL = 86400
MAX_WEIGHT = 255  # Route 53's bound; PowerDNS accepts any, Switchyard keeps one range
_MAX_NAME = 253
_MAX_LABEL = 63
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def check_name(name: str) -> str:
    """``name`` lower-cased if it is a valid fully qualified owner name, else ``ValueError``."""
    lowered = name.lower()
    if not lowered.endswith(".") or lowered == ".":
        raise ValueError(f"DNS name {name!r} must be fully qualified (end with '.')")
    if len(lowered) - 1 > _MAX_NAME:
        raise ValueError(f"DNS name {name!r} is longer than {_MAX_NAME} characters")
    for label in lowered[:-1].split("."):
        if not label or len(label) > _MAX_LABEL or not set(label) <= _LABEL_CHARS:
            raise ValueError(f"DNS name {name!r} has an invalid label {label!r}")
    return lowered


def in_zone(name: str, zone: str) -> bool:
    """Whether ``name`` is ``zone`` itself or below it (both fully qualified)."""
    name, zone = name.lower(), zone.lower()
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True, slots=True)
class RecordSet:
    """The addresses answered at one owner name; see the module docstring for invariants."""

    name: str
    rtype: str
    ttl: int
    values: tuple[str, ...]
    weights: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        if self.rtype not in SUPPORTED_TYPES:
            raise ValueError(f"record type {self.rtype!r} is not supported, only A")
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int):
            raise ValueError(f"ttl of {self.name} must be an int")
        if not 1 <= self.ttl <= MAX_TTL:
            raise ValueError(f"ttl of {self.name} must be in 1..{MAX_TTL}, got {self.ttl}")
        if not self.values:
            raise ValueError(f"{self.name} has no addresses; delete the record instead")
        addresses = [_ipv4(self.name, value) for value in self.values]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"{self.name} lists an address twice: {list(self.values)}")
        weights = self.weights
        if weights is not None:
            weights = tuple(weights)
            if len(weights) != len(addresses):
                raise ValueError(
                    f"{self.name} has {len(addresses)} addresses but {len(weights)} weights"
                )
            for weight in weights:
                if isinstance(weight, bool) or not isinstance(weight, int):
                    raise ValueError(f"weights of {self.name} must be ints")
                if not 0 <= weight <= MAX_WEIGHT:
                    raise ValueError(f"weights of {self.name} must be in 0..{MAX_WEIGHT}")
            if not any(weights):
                raise ValueError(f"{self.name} needs at least one positive weight")
        order = sorted(range(len(addresses)), key=lambda i: addresses[i])
        object.__setattr__(self, "values", tuple(str(addresses[i]) for i in order))
        if weights is not None:
            object.__setattr__(self, "weights", tuple(weights[i] for i in order))

    @property
    def key(self) -> RecordKey:
        return (self.name, self.rtype)

    @property
    def answered(self) -> tuple[str, ...]:
        """The addresses a resolver can be given: all of them, or those with a positive weight."""
        if self.weights is None:
            return self.values
        return tuple(v for v, w in zip(self.values, self.weights, strict=True) if w > 0)

    def describe(self) -> str:
        """``127.0.1.1 ttl 30`` or ``127.0.1.1=80, 127.0.2.1=20 ttl 30``, for reasons and errors."""
        if self.weights is None:
            members = ", ".join(self.values)
        else:
            members = ", ".join(f"{v}={w}" for v, w in zip(self.values, self.weights, strict=True))
        return f"{members} ttl {self.ttl}"


def _ipv4(name: str, value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{name}: {value!r} is not an IPv4 address") from None


def sort_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """``addresses`` sorted by numeric address, the order ``RecordSet.values`` uses."""
    return tuple(sorted(addresses, key=ipaddress.ip_address))


def single(name: str, ttl: int, address: str) -> RecordSet:
    """An A record set answering one address."""
    return RecordSet(name=name, rtype="A", ttl=ttl, values=(address,))


def weighted(name: str, ttl: int, weights: Mapping[str, int]) -> RecordSet:
    """An A record set answering ``address`` in proportion to ``weights[address]``."""
    return RecordSet(
        name=name, rtype="A", ttl=ttl, values=tuple(weights), weights=tuple(weights.values())
    )


Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    """One compare-and-set step: replace ``before`` (None: nothing) with ``after`` (None: nothing).

    A provider applies it only if what it stores at the key is still exactly ``before``.
    """

    action: Action
    before: RecordSet | None
    after: RecordSet | None

    def __post_init__(self) -> None:
        wanted = {"create": (False, True), "update": (True, True), "delete": (True, False)}
        if self.action not in wanted:
            raise ValueError(f"unknown change action {self.action!r}")
        if wanted[self.action] != (self.before is not None, self.after is not None):
            raise ValueError(f"a {self.action} needs {_shape(self.action)}")
        if self.before is not None and self.after is not None:
            if self.before.key != self.after.key:
                raise ValueError("an update must keep the record's name and type")
            if self.before == self.after:
                raise ValueError(f"update of {self.before.name} changes nothing")

    @property
    def key(self) -> RecordKey:
        record = self.after if self.after is not None else self.before
        assert record is not None  # __post_init__ guarantees one side
        return record.key

    @property
    def name(self) -> str:
        return self.key[0]

    def describe(self) -> str:
        """One line for reasons and audit: ``update chat.example. A: 127.0.1.1 ttl 30 -> ...``."""
        name, rtype = self.key
        before = self.before.describe() if self.before is not None else "(none)"
        after = self.after.describe() if self.after is not None else "(none)"
        return f"{self.action} {name} {rtype}: {before} -> {after}"


def _shape(action: str) -> str:
    return {
        "create": "after and no before",
        "update": "both before and after",
        "delete": "before and no after",
    }[action]


def _index(records: Sequence[RecordSet], what: str) -> dict[RecordKey, RecordSet]:
    indexed: dict[RecordKey, RecordSet] = {}
    for record in records:
        if record.key in indexed:
            raise ValueError(f"{what} has two record sets for {record.name} {record.rtype}")
        indexed[record.key] = record
    return indexed


def plan(current: Sequence[RecordSet], desired: Sequence[RecordSet]) -> tuple[Change, ...]:
    """The changes that turn ``current`` into ``desired``; empty when they are equal.

    Both cover the same scope (what the caller manages): a key in ``current`` and not in
    ``desired`` is deleted. Changes come sorted by key, one per key. ``ValueError`` if either
    side holds two record sets for one key.
    """
    now = _index(current, "current")
    want = _index(desired, "desired")
    changes: list[Change] = []
    for key in sorted(now.keys() | want.keys()):
        before, after = now.get(key), want.get(key)
        if before == after:
            continue
        if before is None:
            changes.append(Change("create", None, after))
        elif after is None:
            changes.append(Change("delete", before, None))
        else:
            changes.append(Change("update", before, after))
    return tuple(changes)


def check_before(change: Change, stored: RecordSet | None) -> None:
    """Raise ``ConflictError`` naming the record unless ``stored`` is still ``change.before``."""
    if stored == change.before:
        return
    name, rtype = change.key
    expected = change.before.describe() if change.before is not None else "no record"
    found = stored.describe() if stored is not None else "no record"
    raise ConflictError(
        f"dns: {name} {rtype} changed since it was read: expected {expected}, found {found}"
    )


def apply_changes(current: Sequence[RecordSet], changes: Sequence[Change]) -> tuple[RecordSet, ...]:
    """``current`` after ``changes``, sorted by key; all or nothing.

    Every change's ``before`` is checked first (``check_before``), so a stale one raises
    ``ConflictError`` and nothing is applied. ``ValueError`` for two changes to one key.
    """
    stored = _index(current, "current")
    keys = [change.key for change in changes]
    if len(set(keys)) != len(keys):
        raise ValueError("two changes to the same record in one batch")
    for change in changes:
        check_before(change, stored.get(change.key))
    for change in changes:
        if change.after is None:
            del stored[change.key]
        else:
            stored[change.key] = change.after
    return tuple(stored[key] for key in sorted(stored))


# -- what the authoritative servers answer, and whether that verifies a change --------------


@dataclass(frozen=True, slots=True)
class ServerAnswer:
    """What one authoritative server answered for a name's A record, sorted; () for none.

    ``server`` is ``host:port`` as asked (the in-memory twin names itself instead).
    """

    server: str
    addresses: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", sort_addresses(self.addresses))


@dataclass(frozen=True, slots=True)
class ChangeStatus:
    """A provider's own word on the last change it made at a name (Route 53: GetChange).

    ``settled`` is True only when the provider reports the change served by every one of its
    authoritative servers (Route 53's ``INSYNC``).
    """

    id: str
    status: str
    settled: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """What a provider's authoritative servers answered for one name, and whom it asked.

    Invariants: at least one server was asked, each once. ``change`` is None when the
    provider has no change status to report (it has none, or made no change at the name).
    """

    servers: tuple[ServerAnswer, ...]
    change: ChangeStatus | None = None

    def __post_init__(self) -> None:
        asked = [s.server for s in self.servers]
        if not asked:
            raise ValueError("an answer needs at least one server asked")
        if len(set(asked)) != len(asked):
            raise ValueError(f"a server was asked twice: {asked}")

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address any server asked answered, sorted (their answer when they agree)."""
        return sort_addresses(list({a for s in self.servers for a in s.addresses}))

    def only(self, address: str) -> bool:
        """Whether the change is settled (or has no status) and every server answers exactly
        ``address``."""
        settled = self.change is None or self.change.settled
        return settled and all(s.addresses == (address,) for s in self.servers)

    def detail(self) -> dict[str, JsonValue]:
        """``{"asked": [...], "answers": {server: [...]}, "change": ..., "change_id": ...}``."""
        out: dict[str, JsonValue] = {
            "asked": [s.server for s in self.servers],
            "answers": {s.server: list(s.addresses) for s in self.servers},
        }
        if self.change is not None:
            out["change"] = self.change.status
            out["change_id"] = self.change.id
        return out

    def describe(self) -> str:
        """``127.0.0.1:53 answers 127.0.2.1; change C1 PENDING`` for reasons."""
        parts = [f"{s.server} answers {', '.join(s.addresses) or 'nothing'}" for s in self.servers]
        if self.change is not None:
            parts.append(f"change {self.change.id} {self.change.status}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether every provider's authoritative servers answer one address, and the evidence."""

    ok: bool
    reason: str
    detail: dict[str, JsonValue]


def judge_answers(answers: Mapping[str, Answer], address: str) -> Verification:
    """Verified only if every provider's change is settled and each server it asked answers
    exactly ``address``; the detail says, per provider, whom it asked and what they said."""
    detail: dict[str, JsonValue] = {name: answer.detail() for name, answer in answers.items()}
    if not answers:
        return Verification(False, "no DNS provider to ask", detail)
    wrong = [f"{name}: {a.describe()}" for name, a in answers.items() if not a.only(address)]
    if wrong:
        return Verification(
            False, f"authoritative answers not yet {address}: {' | '.join(wrong)}", detail
        )
    asked = "; ".join(f"{name} asked {a.describe()}" for name, a in answers.items())
    return Verification(True, f"every authoritative server answers {address} ({asked})", detail)


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``(host, port)`` from ``host``, ``host:port`` or ``[v6]:port``; ``ValueError`` if not."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"name server {text!r} is not [address]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"name server {text!r} has no valid IPv6 address") from None
    else:
        host, colon, rest = text.partition(":")
        if not _HOST.fullmatch(host):
            raise ValueError(f"name server {text!r} is not host or host:port")
        rest = colon + rest
    if not rest:
        return host.lower(), default_port
    digits = rest[1:]
    if not digits.isdigit() or not 1 <= int(digits) <= 65535:
        raise ValueError(f"name server {text!r} has no valid port (1..65535)")
    return host.lower(), int(digits)


# A host name or IPv4 address: dot-separated labels of letters, digits and inner hyphens.
_HOST = re.compile(
    r"(?=.{1,254}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
