"""Both regions' dialog runtimes as real processes (``switchyard runtime --region``), wired
to the harness like the demo: secrets from Vault via AppRole, sessions in each region's own
PostgreSQL. The golden questions are asked over HTTP with ``switchyard eval --url``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import repo_root
from switchyard.devenv.stacks import prepare_stores
from switchyard.devenv.topology_file import write_topology

QUESTION = "How do I connect to the VPN from home?"


@pytest.fixture(scope="module")
def runtimes(harness: Harness) -> Iterator[Harness]:
    """Both runtimes running (started here unless a demo already runs them)."""
    write_topology(harness, harness.api.topology_path)
    prepare_stores(harness)
    names = [r.name for r in harness.runtimes.values()]
    results = harness.up(names)
    yield harness
    started = [r.name for r in results if r.action == "started"]
    if started:
        harness.down(started)


def test_the_primary_answers_and_the_standby_refuses_writes(runtimes: Harness) -> None:
    primary = runtimes.runtimes["region-a"].url
    standby = runtimes.runtimes["region-b"].url

    answer = requests.post(f"{primary}/v1/chat", json={"message": QUESTION}, timeout=30)
    refused = requests.post(f"{standby}/v1/chat", json={"message": QUESTION}, timeout=30)
    ready = requests.get(f"{standby}/readyz", timeout=30).json()

    assert answer.status_code == 200
    assert answer.json()["region"] == "region-a"
    assert "it/vpn.md" in {c["document"] for c in answer.json()["citations"]}
    assert refused.status_code == 503
    assert refused.json()["code"] == "region_standby"
    assert (ready["ready"], ready["role"], ready["region"]) == (True, "standby", "region-b")


def test_golden_questions_over_http_reach_the_recall_target(runtimes: Harness) -> None:
    url = runtimes.runtimes["region-a"].url
    result = subprocess.run(
        [sys.executable, "-m", "switchyard.cli", "eval", "--url", url, "--json"],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recall_at_5"] >= 0.9
    assert report["citation_accuracy"] >= 0.9
    assert report["abstention_accuracy"] >= 0.9
    print(f"\ngolden questions against {url}: {report}")


def test_the_runtime_logs_one_json_line_per_chat(runtimes: Harness) -> None:
    url = runtimes.runtimes["region-a"].url
    sid = requests.post(f"{url}/v1/chat", json={"message": QUESTION}, timeout=30).json()[
        "session_id"
    ]

    log_path = runtimes.layout.log(runtimes.runtimes["region-a"].name)
    events = [
        json.loads(line) for line in log_path.read_text().splitlines() if '"dialog.chat"' in line
    ]
    mine = [e for e in events if e.get("session") == sid]
    assert len(mine) == 1
    assert mine[0]["region"] == "region-a"
    assert mine[0]["epoch"] >= 1
    assert mine[0]["retrieved"]


def _snapshot_cli(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    """``switchyard snapshot ...`` as an operator runs it: the runtimes' settings (topology
    file, Vault AppRole login, data dir) in the environment."""
    env = {**os.environ, **h.runtimes["region-a"].snapshot_env()}
    return subprocess.run(
        [sys.executable, "-m", "switchyard.cli", "snapshot", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        env=env,
        timeout=300,
    )


def test_the_snapshot_runbook_publishes_and_the_standby_runtime_restores(
    runtimes: Harness,
) -> None:
    published = _snapshot_cli(runtimes, "publish", "--region", "region-a")
    assert published.returncode == 0, published.stderr
    body = json.loads(published.stdout)
    assert body["replicated"][0]["region"] == "region-b"

    restored = _snapshot_cli(runtimes, "restore", "--region", "region-b")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["ok"] is True

    status = _snapshot_cli(runtimes, "status")
    assert status.returncode == 0, status.stderr
    rows = {r["region"]: r for r in json.loads(status.stdout)}
    assert rows["region-b"]["active_generation"] == rows["region-a"]["latest_generation"]
    canary = requests.get(
        f"{runtimes.runtimes['region-b'].url}/v1/canary", params={"q": QUESTION}, timeout=30
    ).json()
    assert "it/vpn.md" in canary["cited_documents"]
