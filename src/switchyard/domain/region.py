"""A region as the control plane records it: its role and its epoch.

Invariants:

- ``epoch`` is never negative and only grows over a region's life (the store enforces
  ``epoch >= 0``; callers that bump it must compare-and-set).
- At most one region holds ``RegionRole.PRIMARY`` at a time (the store enforces it with a
  partial unique index).
- A region never holds two roles at one epoch: a change of role carries a strictly newer
  epoch; rewriting the same role at the same epoch is the only other change allowed
  (``state_change_refusal``, enforced by the control store and by each region's own
  database). So "primary at epoch N" names one region and one term, whoever wrote it last.
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


def state_change_refusal(
    region: str,
    *,
    before: tuple[RegionRole, int],
    after: tuple[RegionRole, int],
    before_token: int | None = None,
    token: int | None = None,
) -> str | None:
    """Why recording ``after`` (role, epoch) over ``before`` must be refused, or None.

    Refused: a fencing ``token`` older than the one that wrote ``before`` (a deposed leader;
    tokens are compared only when both are given), an older epoch, or another role at the
    same epoch. Pure; every store that records a region's role calls it.
    """
    (role_was, epoch_was), (role, epoch) = before, after
    if token is not None and before_token is not None and token < before_token:
        return (
            f"region {region}: fencing token {token} is older than the token {before_token} "
            "that wrote its state (a newer leader has acted)"
        )
    if epoch < epoch_was:
        return f"region {region}: epoch {epoch} is older than the recorded epoch {epoch_was}"
    if epoch == epoch_was and role is not role_was:
        return (
            f"region {region}: epoch {epoch} is recorded as {role_was.value}; "
            f"{role.value} needs a newer epoch (never two roles at one epoch)"
        )
    return None
