"""``make demo``: the two regions' infrastructure, the control-plane API, and a short tour that
ends with the main job: a planned switchover drill, measured, and the same conversation going on
in the new primary. The tour runs from whichever region is primary now, so running it again
switches back. Every step checks what it shows; the demo exits 1 naming the step that failed."""

from __future__ import annotations

import json
import time

import psycopg
import requests

from switchyard.devenv.harness import Harness
from switchyard.devenv.stacks import harness_buckets, prepare_stores
from switchyard.devenv.topology_file import write_topology

# Probes every 2 s so the demo sees the loop decide within seconds (production: 10 s).
DEMO_PROBE_INTERVAL_SECONDS = 2.0


class DemoFailedError(Exception):
    """A step of the tour did not do what it shows; the demo exits non-zero."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailedError(what)


def _primary_and_standby(regions: list[dict[str, object]]) -> tuple[str, str]:
    """The tour runs from whichever region is primary now (a previous demo switched over)."""
    roles = {str(r["name"]): str(r["role"]) for r in regions}
    primary = next((name for name, role in roles.items() if role == "primary"), None)
    standby = next((name for name, role in roles.items() if role == "standby"), None)
    if primary is None or standby is None:
        raise DemoFailedError(
            f"the tour needs a primary and a standby, the control plane records {roles} "
            "(`make clean` starts the demo afresh)"
        )
    return primary, standby


def run_demo(h: Harness) -> int:
    try:
        return _tour(h)
    except DemoFailedError as exc:
        print(f"\n!! demo failed: {exc}")
        print("   logs: .local/logs/ (or $SWITCHYARD_DEV_DIR/logs); `make status` shows what runs")
        return 1


def _tour(h: Harness) -> int:
    print("== starting the local infrastructure (reusing what already runs)")
    for r in h.up():
        print(f"   {r.name:<14} {r.action:<16} {r.seconds:5.2f}s")
    write_topology(h, h.api.topology_path, interval_seconds=DEMO_PROBE_INTERVAL_SECONDS)
    # The same settings path the processes take: AppRole login, secrets from Vault.
    added, states = prepare_stores(h)
    print(
        f"== control-plane store migrated; new regions recorded: "
        f"{', '.join(r.name for r in added) or 'none'}"
    )
    for state in states:
        print(f"== {state.region} store migrated; role {state.role.value}, epoch {state.epoch}")
    print("== starting the API and both regions' dialog runtimes (first start embeds the corpus)")
    for r in h.up(["api", *(rt.name for rt in h.runtimes.values())]):
        print(f"   {r.name:<14} {r.action:<16} {r.seconds:5.2f}s")

    api = h.api.url
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    print("\n== GET /v1/regions (viewer token)")
    regions = requests.get(f"{api}/v1/regions", headers=viewer, timeout=5).json()
    for region in regions["items"]:
        print(f"   {region['name']:<10} {region['role']:<9} epoch {region['epoch']}")
    primary, standby = _primary_and_standby(regions["items"])
    print("== POST /v1/events (operator token): a note on the timeline")
    note = {"message": "demo started", "region": primary}
    requests.post(f"{api}/v1/events", headers=operator, json=note, timeout=5).raise_for_status()
    events = requests.get(f"{api}/v1/events?limit=3", headers=viewer, timeout=5).json()
    for e in events["items"]:
        print(f"   #{e['id']:<4} {e['ts'][:19]} {e['actor']:<15} {e['action']:<6} {e['reason']}")
    print("== POST /v1/events with the viewer token is refused:")
    denied = requests.post(f"{api}/v1/events", headers=viewer, json=note, timeout=5)
    print(f"   {denied.status_code} {json.dumps(denied.json())}")

    print("\n== starting CDC: a source and a sink in each region (role decides who works)")
    for r in h.up([c.name for c in h.cdc.values()]):
        print(f"   {r.name:<14} {r.action:<16} {r.seconds:5.2f}s")
    session_id = _dialog_tour(h, primary, standby)
    _cdc_tour(h, session_id, primary, standby)
    _snapshot_tour(h, primary, standby)
    _failover_tour(h, standby)
    _switchover_tour(h, session_id, primary, standby)

    print("\n== where everything is")
    for s in h.status():
        where = "  ".join(f"{k}={v}" for k, v in s.endpoints.items())
        print(f"   {s.name:<14} {s.state:<9} {where}")
    print(f"\n   API docs: {api}/docs     metrics: {api}/metrics")
    print("   tokens: `switchyard dev token viewer|operator|admin` (local harness only)")
    print("   stop everything: make down")
    return 0


def _failover_tour(h: Harness, standby: str) -> None:
    print("\n== starting the three controllers (one per vantage point)")
    for r in h.up([c.name for c in h.controllers.values()]):
        print(f"   {r.name:<18} {r.action:<16} {r.seconds:5.2f}s")
    api = h.api.url
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    status: dict[str, object] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = requests.get(f"{api}/v1/controller", headers=viewer, timeout=5).json()
        if status.get("code") not in ("", "health_unknown"):
            break
        time.sleep(0.5)
    print(f"== GET /v1/controller: {status.get('code')} (leader {status.get('leader')})")
    print(f"   {status.get('reason')}")
    _require(status.get("code") == "healthy", f"the loop should hold steady, says {status}")
    body = {"target": standby, "reason": "demo: rehearse a failover", "dry_run": True}
    accepted = requests.post(f"{api}/v1/failovers", headers=operator, json=body, timeout=5)
    print(f"== POST /v1/failovers (dry run) → {accepted.status_code} {accepted.json()}")
    _require(accepted.status_code == 202, "the dry-run failover was not accepted")
    href = accepted.json().get("href", "")
    record: dict[str, object] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = requests.get(f"{api}{href}", headers=viewer, timeout=5).json()
        if record.get("status") in ("succeeded", "failed", "aborted", "rejected"):
            break
        time.sleep(0.5)
    print(f"== GET {href}: {record.get('status')}")
    steps: list[dict[str, str]] = record.get("steps", [])  # type: ignore[assignment]
    for step in steps:
        print(f"   {step['name']:<16} {step['status']:<9} {step['reason']}")
    _require(record.get("status") == "succeeded", f"the dry run ended {record.get('status')}")


def _cdc_tour(h: Harness, session_id: str, primary: str, standby: str) -> None:
    standby_db = h.region_dbs[standby]
    print(f"\n== the conversation reaches {standby}'s database through Kafka")
    turns = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with psycopg.connect(standby_db.conninfo(standby_db.database)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM dialog_turns WHERE session_id = %s", (session_id,)
            ).fetchone()
        turns = int(row[0]) if row else 0
        if turns >= 4:
            break
        time.sleep(0.5)
    print(f"   {standby} holds {turns} turns of session {session_id}")
    _require(turns >= 4, f"the conversation did not reach {standby} within 30 s")
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    pairs = requests.get(f"{h.api.url}/v1/replication", headers=viewer, timeout=10).json()
    print("== GET /v1/replication")
    for p in pairs["items"]:
        if p["active"]:
            print(
                f"   {p['source']} → {p['target']}: {p['lag_bytes']} bytes, "
                f"{p['lag_seconds']} s commit→applied, {p['consumer_lag_messages']} records "
                f"behind, heartbeat {p['heartbeat_age_seconds']} s ago, gap {p['gap']}"
            )


def _snapshot_tour(h: Harness, primary: str, standby: str) -> None:
    """Publish the primary's index, copy it to the standby's bucket, restore it there (gated)."""
    from datetime import UTC, datetime

    from switchyard.dialog.store import IndexStore
    from switchyard.snapshots.publish import publish
    from switchyard.snapshots.replicate import replicate

    buckets = harness_buckets(h)
    source = IndexStore(h.runtimes[primary].data_dir / primary / "index")
    print(f"\n== switchyard snapshot publish --region {primary}")
    published = publish(source, buckets[primary], region=primary, now=lambda: datetime.now(UTC))
    print(
        f"   generation {published.generation}: {published.uploaded_files} of "
        f"{published.files} files uploaded ({published.uploaded_bytes} bytes)"
        + (" — unchanged since the last publish" if published.unchanged else "")
    )
    copied = replicate(buckets[primary], buckets[standby])
    print(
        f"== switchyard snapshot replicate {primary} {standby}: {copied.copied_files} files "
        f"({copied.copied_bytes} bytes) streamed and verified"
    )
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    restored = requests.post(
        f"{h.runtimes[standby].url}/v1/index/restore", json={}, headers=operator, timeout=300
    )
    print(f"== POST {standby} /v1/index/restore → {restored.status_code}")
    _require(restored.status_code == 200, f"restore refused: {restored.text[:300]}")
    print(f"   {restored.json().get('gate') or restored.json().get('detail')}")
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    body = requests.get(f"{h.api.url}/v1/replication", headers=viewer, timeout=10).json()
    for s in body.get("snapshots", []):
        print(
            f"   {s['region']}: latest {s['latest_generation']}, serves {s['active_generation']}"
            f", behind {s['generations_behind']}, age {s['age_seconds']} s"
        )


def _dialog_tour(h: Harness, primary_name: str, standby_name: str) -> str:
    """Two turns in the primary; returns the session id."""
    primary = h.runtimes[primary_name].url
    standby = h.runtimes[standby_name].url
    question = "How many vacation days do I get, and can I carry some over?"
    print(f"\n== POST {primary}/v1/chat ({primary_name}, primary)")
    print(f"   you: {question}")
    answered = requests.post(f"{primary}/v1/chat", json={"message": question}, timeout=30)
    _require(answered.status_code == 200, f"chat answered {answered.status_code}")
    reply = answered.json()
    print(f"   bot: {reply['answer']}")
    for c in reply["citations"]:
        print(f"        cites {c['document']} chunk {c['chunk_id']} chars {c['start']}-{c['end']}")
    print(f"   confidence {reply['confidence']}, region {reply['region']}, epoch {reply['epoch']}")
    follow_up = {
        "session_id": reply["session_id"],
        "message": "What is the boiling point of tungsten?",
    }
    print(f"   you: {follow_up['message']}")
    reply = requests.post(f"{primary}/v1/chat", json=follow_up, timeout=30).json()
    print(f"   bot: {reply['answer']}  ({reply['kind']}, turn {reply['turn']})")
    session_id = str(reply["session_id"])
    print(f"== POST {standby}/v1/chat ({standby_name}, standby) is refused until a failover:")
    refused = requests.post(f"{standby}/v1/chat", json={"message": question}, timeout=30)
    print(
        f"   {refused.status_code} Retry-After={refused.headers.get('Retry-After')} "
        f"{refused.json()['detail']}"
    )
    _require(refused.status_code == 503, "the standby accepted a write")
    canary = requests.get(f"{standby}/v1/canary", params={"q": question}, timeout=30).json()
    print(
        f"== GET {standby}/v1/canary answers from the standby too: cites "
        f"{canary['cited_documents']} in {canary['timings_ms']['total']:.1f} ms"
    )
    print(f"   golden questions: switchyard eval --url {primary}")
    return session_id


def _switchover_tour(h: Harness, session_id: str, primary: str, standby: str) -> None:
    """The main job: a planned switchover drill that loses nothing, measured, and the same
    conversation going on in the new primary."""
    api = h.api.url
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    body = {
        "kind": "planned",
        "target": standby,
        "objectives": {"rto_seconds": 60, "rpo_seconds": 0},
    }
    accepted = requests.post(f"{api}/v1/drills", headers=operator, json=body, timeout=5)
    print(f"\n== POST /v1/drills (planned switchover to {standby}) → {accepted.status_code}")
    _require(accepted.status_code == 202, f"the drill was not accepted: {accepted.text[:300]}")
    href = accepted.json()["href"]
    drill: dict[str, object] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        drill = requests.get(f"{api}{href}", headers=viewer, timeout=5).json()
        if drill.get("status") in ("passed", "failed", "aborted"):
            break
        time.sleep(0.5)
    report: dict[str, object] = drill.get("report") or {}  # type: ignore[assignment]
    print(f"== GET {href}: {drill.get('status')}")
    for key in ("fence_seconds", "dns_seconds", "rto_seconds", "rpo_seconds"):
        print(f"   {key:<20} {report.get(key)}")
    print(f"   unreplicated writes  {report.get('unreplicated_writes')}")
    _require(drill.get("status") == "passed", f"the switchover drill ended {drill.get('status')}")
    question = "And how many of them can I carry over into next year?"
    print(f"== POST {h.runtimes[standby].url}/v1/chat: the same session, now in {standby}")
    print(f"   you: {question}")
    answered = requests.post(
        f"{h.runtimes[standby].url}/v1/chat",
        json={"session_id": session_id, "message": question},
        timeout=30,
    )
    _require(answered.status_code == 200, f"the new primary answered {answered.status_code}")
    reply = answered.json()
    print(f"   bot: {reply['answer']}")
    print(
        f"   turn {reply['turn']} of session {session_id}, region {reply['region']}, "
        f"epoch {reply['epoch']}"
    )
    _require(reply["turn"] > 2, "the conversation did not carry over to the new primary")
    print(f"   {primary} is a standby now; `make demo` again switches back")
