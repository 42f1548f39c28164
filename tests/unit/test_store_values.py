"""Region and audit values: invariants enforced at construction."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from switchyard.domain.audit import AuditEvent, JsonValue, freeze_json, thaw_json
from switchyard.domain.region import Region, RegionRole, initial_epoch

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_region_refuses_a_negative_epoch() -> None:
    with pytest.raises(ValueError, match="epoch"):
        Region(name="eu", role=RegionRole.STANDBY, epoch=-1, updated_at=T0)


@pytest.mark.parametrize(
    ("role", "epoch"),
    [
        (RegionRole.PRIMARY, 1),
        (RegionRole.STANDBY, 0),
        (RegionRole.FENCED, 0),
        (RegionRole.RECOVERING, 0),
    ],
)
def test_only_the_primary_starts_in_term_one(role: RegionRole, epoch: int) -> None:
    assert initial_epoch(role) == epoch


def test_audit_event_state_is_deeply_read_only() -> None:
    source: dict[str, JsonValue] = {"regions": [{"name": "eu"}], "epoch": 2}
    event = AuditEvent(
        id=1,
        ts=T0,
        actor="ctl",
        action="fence",
        region="eu",
        reason="r",
        code="c",
        before=source,
        after=None,
    )
    source["epoch"] = 3  # the event must not see later edits to the caller's dict

    assert event.before is not None
    assert event.before["epoch"] == 2
    regions = event.before["regions"]
    assert isinstance(regions, tuple)
    assert isinstance(regions[0], MappingProxyType)
    with pytest.raises(TypeError):
        regions[0]["name"] = "us"  # type: ignore[index]


def test_thaw_reverses_freeze_into_plain_json() -> None:
    value: JsonValue = {"a": [1, {"b": None}], "c": "text"}

    frozen = freeze_json(value)

    assert thaw_json(frozen) == value
    assert type(thaw_json(frozen)) is dict
