"""Audit events: what was done, by whom, why, and the state before and after.

Invariants:

- An event is immutable once built: ``before`` and ``after`` are deep read-only views
  (mappings are ``MappingProxyType``, arrays are tuples), so no holder can edit history.
- ``id`` grows with insertion order; pages are newest first by ``id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TypeAlias

JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""A JSON value; frozen values use tuples and read-only mappings."""

JsonObject: TypeAlias = Mapping[str, JsonValue]


def freeze_json(value: JsonValue) -> JsonValue:
    """A deep read-only copy of ``value`` (mappings proxied, sequences turned into tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze_json(v) for k, v in value.items()})
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(freeze_json(v) for v in value)
    return value


def thaw_json(value: JsonValue) -> JsonValue:
    """A plain ``dict``/``list`` copy of ``value``, ready for ``json.dumps``."""
    if isinstance(value, Mapping):
        return {str(k): thaw_json(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [thaw_json(v) for v in value]
    return value


def freeze_object(value: JsonObject | None) -> JsonObject | None:
    """``freeze_json`` for the top-level object of ``before``/``after``."""
    if value is None:
        return None
    return MappingProxyType({str(k): freeze_json(v) for k, v in value.items()})


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One recorded action; ``reason`` is a sentence for people, ``code`` a stable label."""

    id: int
    ts: datetime
    actor: str
    action: str
    region: str | None
    reason: str
    code: str
    before: JsonObject | None
    after: JsonObject | None

    def __post_init__(self) -> None:
        # Freeze once, here, so every holder of the event (API, loop, tests) shares history
        # that none of them can edit; object.__setattr__ because the dataclass is frozen.
        object.__setattr__(self, "before", freeze_object(self.before))
        object.__setattr__(self, "after", freeze_object(self.after))


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of events, newest first; pass ``next_before_id`` to get the next (older) page.

    ``next_before_id`` is None when no older event matches.
    """

    items: tuple[AuditEvent, ...]
    next_before_id: int | None
