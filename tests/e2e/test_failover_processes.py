"""The failover loop for real: three controller processes (one per vantage point), both
regions' runtimes and CDC processes, the API, PostgreSQL, Kafka, Knot, PowerDNS, OpenBao and
both regions' S3 buckets, in a private harness.

The gates are fed with real data: every region serves a published snapshot generation, the
CDC sinks report their lag, and the topology blocks a failover on a gate it cannot read
(``unknown_gates: block``), so the automatic failover below happens only because the lag and
snapshot figures let it.

In order (the module is one story): the gates read figures; a planned switchover whose DNS
step fails until Knot returns, with the leading controller killed -9 mid-saga and another one
resuming it; then an armed drill while region-b's runtime is killed, failed over
automatically, with RTO in the report; then intents the API must refuse.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.harness import private_harness
from switchyard.devenv.dns import record_answer
from switchyard.devenv.harness import Harness
from switchyard.devenv.stacks import GATED_FAILOVER_SERVERS, start_failover_stack
from switchyard.topology import load_topology


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with private_harness("failover-e2e", GATED_FAILOVER_SERVERS) as harness:
        start_failover_stack(harness, gates=True)
        yield harness


def knot_answer(h: Harness) -> list[str] | None:
    return record_answer(h.knot.port)


def api(h: Harness, method: str, path: str, role: str = "viewer", **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {h.creds.api_tokens[role]}"}
    return requests.request(method, f"{h.api.url}{path}", headers=headers, timeout=10, **kw)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def kill9(h: Harness, name: str) -> None:
    pid = int(Path(h.layout.pidfile(name)).read_text().split()[0])
    os.kill(pid, signal.SIGKILL)


def regions(h: Harness) -> dict[str, tuple[str, int]]:
    items = api(h, "GET", "/v1/regions").json()["items"]
    return {r["name"]: (r["role"], r["epoch"]) for r in items}


def gate_figures(h: Harness, standby: str) -> tuple[float | None, int | None]:
    """What the failover gates read for ``standby``: CDC lag and snapshot generations behind."""
    body = api(h, "GET", "/v1/replication").json()
    pair = next(p for p in body["items"] if p["active"] and p["target"] == standby)
    lag = pair["gate_lag_seconds"]
    behind = next(s["generations_behind"] for s in body["snapshots"] if s["region"] == standby)
    return lag, behind


def gates_fed(h: Harness, standby: str) -> bool:
    lag, behind = gate_figures(h, standby)
    return lag is not None and lag < 30 and behind == 0


def test_the_gates_read_real_figures_and_the_topology_blocks_unknown_ones(h: Harness) -> None:
    assert load_topology(h.api.topology_path).failover.unknown_gates == "block"
    wait_for("region-b's lag and snapshot figures", lambda: gates_fed(h, "region-b"))
    body = api(h, "GET", "/v1/replication").json()
    served = {s["region"]: s["active_generation"] for s in body["snapshots"]}
    assert served["region-a"] == served["region-b"] is not None


def test_controllers_agree_the_primary_is_healthy(h: Harness) -> None:
    status = wait_for(
        "a healthy decision",
        lambda: (s := api(h, "GET", "/v1/controller").json())["code"] == "healthy" and s,
    )
    assert status["leader"] in ("region-a", "region-b", "witness")
    assert knot_answer(h) == ["127.0.1.1"]


def test_leader_killed_mid_switchover_is_resumed_by_another_controller(h: Harness) -> None:
    h.down(["knot"])  # the saga will stop at update_dns and retry it every cycle
    drill = api(
        h,
        "POST",
        "/v1/drills",
        "operator",
        json={
            "kind": "planned",
            "target": "region-b",
            "reason": "switchover rehearsal",
            "objectives": {"rpo_seconds": 0},
        },
    )
    assert drill.status_code == 202, drill.text
    failover_id = drill.json()["id"]

    def stuck_at_dns() -> dict[str, Any] | None:
        f = api(h, "GET", f"/v1/failovers/{failover_id}").json()
        steps = {s["name"]: s for s in f.get("steps", [])}
        dns_step = steps.get("update_dns")
        return (
            f if dns_step and dns_step["attempts"] >= 1 and dns_step["status"] == "failed" else None
        )

    stuck = wait_for("the saga to stop at update_dns", stuck_at_dns)
    assert stuck["status"] == "running"
    leader = api(h, "GET", "/v1/controller").json()["leader"]
    kill9(h, h.controllers[leader].name)
    h.up(["knot"])

    done = wait_for(
        "the failover to finish",
        lambda: (
            (f := api(h, "GET", f"/v1/failovers/{failover_id}").json())["status"]
            in ("succeeded", "failed", "aborted")
            and f
        ),
    )
    assert done["status"] == "succeeded", done
    assert api(h, "GET", "/v1/controller").json()["leader"] != leader
    dns_step = next(s for s in done["steps"] if s["name"] == "update_dns")
    assert dns_step["attempts"] >= 2
    assert regions(h) == {"region-a": ("standby", 2), "region-b": ("primary", 2)}
    assert knot_answer(h) == ["127.0.2.1"]
    report = api(h, "GET", f"/v1/drills/{drill.json()['drill_id']}").json()
    assert report["status"] == "passed"
    assert report["report"]["rpo_seconds"] == 0
    chat = requests.post(
        f"{h.runtimes['region-b'].url}/v1/chat",
        json={"message": "How do I reset my password?"},
        timeout=30,
    )
    assert chat.status_code == 200  # the promoted region takes writes
    refused = requests.post(
        f"{h.runtimes['region-a'].url}/v1/chat", json={"message": "hello"}, timeout=30
    )
    assert refused.status_code == 503
    assert refused.json()["code"] == "region_standby"


def test_killing_the_primary_runtime_fails_over_with_rto_in_the_drill_report(h: Harness) -> None:
    armed = api(
        h,
        "POST",
        "/v1/drills",
        "operator",
        json={
            "kind": "unplanned",
            "target": "region-a",
            "fault": "external",
            "reason": "kill runtime-b",
            "objectives": {"rto_seconds": 30},
        },
    )
    assert armed.status_code == 202, armed.text
    drill_id = armed.json()["drill_id"]
    # Only lag and snapshot figures the gates can read let region-a be promoted.
    wait_for("region-a's lag and snapshot figures", lambda: gates_fed(h, "region-a"))
    killed_at = time.monotonic()
    kill9(h, h.runtimes["region-b"].name)

    report = wait_for(
        "the drill to finish",
        lambda: (
            (d := api(h, "GET", f"/v1/drills/{drill_id}").json())["status"] in ("passed", "failed")
            and d
        ),
    )
    observed = time.monotonic() - killed_at
    assert report["status"] == "passed", report
    r = report["report"]
    assert 0 < r["rto_seconds"] <= observed  # measured from the first failed probe
    assert r["detection_seconds"] >= 2  # three 1 s rounds at a quorum of vantage points
    assert knot_answer(h) == ["127.0.1.1"]
    assert regions(h) == {"region-a": ("primary", 3), "region-b": ("fenced", 3)}
    print(f"\nkill → drill finished in {observed:.2f} s; report {r}")


def test_bad_intents_are_refused_with_4xx(h: Harness) -> None:
    cases = [
        ({"target": "region-a", "reason": "again"}, 409, "target_is_primary"),
        ({"target": "region-b", "reason": "back"}, 409, "target_not_standby"),
        ({"target": "region-z", "reason": "where"}, 422, "unknown_region"),
        ({"target": "region-b"}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        resp = api(h, "POST", "/v1/failovers", "operator", json=body)
        assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
    assert api(h, "POST", "/v1/failovers", "viewer", json=cases[0][0]).status_code == 403
