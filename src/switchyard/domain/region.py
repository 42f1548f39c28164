"""A region as the control plane records it: its role and its epoch.

Invariants:

- ``epoch`` is never negative and only grows over a region's life (the store enforces
  ``epoch >= 0``; callers that bump it must compare-and-set).
- At most one region holds ``RegionRole.PRIMARY`` at a time (the store enforces it with a
  partial unique index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RegionRole(StrEnum):
    """What a region is allowed to do; the values are stored as text."""

    PRIMARY = "primary"
    STANDBY = "standby"
    FENCED = "fenced"
    RECOVERING = "recovering"


@dataclass(frozen=True, slots=True)
class Region:
    """One region's recorded role; ``updated_at`` is the store's clock, timezone-aware."""

    name: str
    role: RegionRole
    epoch: int
    updated_at: datetime

    def __post_init__(self) -> None:
        if self.epoch < 0:
            raise ValueError(f"region {self.name!r}: epoch must be >= 0, got {self.epoch}")


def initial_epoch(role: RegionRole) -> int:
    """Epoch a region starts with when first recorded from the topology.

    The epoch counts terms as primary: the first primary starts in term 1, every other
    region starts at 0 ("never primary"). The first promotion then moves to an epoch
    greater than any recorded one, so a write stamped 0 can never pass for a primary's.
    """
    return 1 if role is RegionRole.PRIMARY else 0
