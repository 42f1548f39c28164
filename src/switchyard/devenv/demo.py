"""``make demo``: the two regions' infrastructure, the control-plane API, and a short tour."""

from __future__ import annotations

import json

import requests

from switchyard.bootstrap import build_core, prepare_store
from switchyard.devenv.harness import Harness
from switchyard.devenv.topology_file import write_topology
from switchyard.observability.logging import Redactor
from switchyard.settings import load_settings


def run_demo(h: Harness) -> int:
    print("== starting the local infrastructure (reusing what already runs)")
    for r in h.up():
        print(f"   {r.name:<14} {r.action:<16} {r.seconds:5.2f}s")
    write_topology(h, h.api.topology_path)
    # The same settings path the API process takes: AppRole login, secrets from Vault.
    core = build_core(load_settings(h.api.settings_env()), Redactor())
    added = prepare_store(core)
    core.engine.dispose()
    print(
        f"== control-plane store migrated; new regions recorded: "
        f"{', '.join(r.name for r in added) or 'none'}"
    )
    for r in h.up(["api"]):
        print(f"   {r.name:<14} {r.action:<16} {r.seconds:5.2f}s")

    api = h.api.url
    viewer = {"Authorization": f"Bearer {h.creds.api_tokens['viewer']}"}
    operator = {"Authorization": f"Bearer {h.creds.api_tokens['operator']}"}
    print("\n== GET /v1/regions (viewer token)")
    regions = requests.get(f"{api}/v1/regions", headers=viewer, timeout=5).json()
    for region in regions["items"]:
        print(f"   {region['name']:<10} {region['role']:<9} epoch {region['epoch']}")
    print("== POST /v1/events (operator token): a note on the timeline")
    note = {"message": "demo started", "region": regions["items"][0]["name"]}
    requests.post(f"{api}/v1/events", headers=operator, json=note, timeout=5).raise_for_status()
    events = requests.get(f"{api}/v1/events?limit=3", headers=viewer, timeout=5).json()
    for e in events["items"]:
        print(f"   #{e['id']:<4} {e['ts'][:19]} {e['actor']:<15} {e['action']:<6} {e['reason']}")
    print("== POST /v1/events with the viewer token is refused:")
    denied = requests.post(f"{api}/v1/events", headers=viewer, json=note, timeout=5)
    print(f"   {denied.status_code} {json.dumps(denied.json())}")

    print("\n== where everything is")
    for s in h.status():
        where = "  ".join(f"{k}={v}" for k, v in s.endpoints.items())
        print(f"   {s.name:<14} {s.state:<9} {where}")
    print(f"\n   API docs: {api}/docs     metrics: {api}/metrics")
    print("   tokens: `switchyard dev token viewer|operator|admin` (local harness only)")
    print("   stop everything: make down")
    return 0
