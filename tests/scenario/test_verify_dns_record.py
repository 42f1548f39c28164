"""The failover record says what verify_dns checked: per provider, whom it asked and what
each server answered (Route 53's name servers and change status are in the integration
tests; here the twin, which names itself)."""

from __future__ import annotations

from scenario.world import ADDRESSES, World, topology
from switchyard.domain.saga import Step, StepStatus


def test_the_verify_step_records_who_was_asked_and_what_they_answered() -> None:
    world = World(topology())
    world.run(3)
    world.kill("region-a")

    [record] = [f for report in world.run(6) for f in report.finished]

    verify = record.step(Step.VERIFY_DNS)
    assert verify is not None
    assert verify.status is StepStatus.SUCCEEDED
    twin = "memory (in memory)"
    assert verify.detail == {
        "memory": {"asked": [twin], "answers": {twin: [ADDRESSES["region-b"]]}}
    }
    assert verify.reason.startswith(f"every authoritative server answers {ADDRESSES['region-b']}")
    assert twin in verify.reason
