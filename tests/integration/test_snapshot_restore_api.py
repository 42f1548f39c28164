"""A standby runtime restoring a snapshot through its API: the real model, the demo corpus's
golden questions as the gate, SeaweedFS as the bucket."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from support.files import intact, sentinel, tree
from support.hostile import climbing_through_staging
from support.runtime import auth, runtime_app
from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.dialog.documents import load_corpus
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex, build_index
from switchyard.dialog.store import IndexStore
from switchyard.snapshots.layout import manifest_key, read_active, read_manifest
from switchyard.snapshots.publish import publish

REPO_ROOT = Path(__file__).resolve().parents[2]
VACATION = "How many days of paid vacation does a new full-time employee get per year?"


def _published(index: SearchIndex, root: Path, bucket: S3ObjectStore) -> int:
    store = IndexStore(root)
    store.save(index)
    return publish(store, bucket, region="region-a", now=lambda: datetime.now(UTC)).generation


def test_a_standby_restores_behind_the_golden_gate(
    tmp_path: Path,
    region_store: Engine,
    minilm: MiniLmEmbedder,
    demo_index: SearchIndex,
    buckets: dict[str, S3ObjectStore],
) -> None:
    bucket = buckets["region-a"]
    good = _published(demo_index, tmp_path / "good", bucket)
    # A generation that lost most of the corpus: it must not go live.
    few = [d for d in load_corpus(REPO_ROOT / "corpus" / "demo") if d.doc_id.startswith("it/")]
    bad = _published(build_index(few, minilm), tmp_path / "bad", bucket)
    empty = build_index([], minilm)
    app = runtime_app(
        region_store, minilm, empty, store=IndexStore(tmp_path / "standby"), snapshots=bucket
    )

    with TestClient(app) as client:
        assert client.post("/v1/index/restore", json={}).status_code == 401
        assert client.post("/v1/index/restore", json={}, headers=auth("viewer")).status_code == 403
        invalid = client.post("/v1/index/restore", json={"generation": 0}, headers=auth("operator"))
        assert invalid.status_code == 422
        assert invalid.json()["field"] == "body.generation"
        missing = client.post(
            "/v1/index/restore", json={"generation": 99}, headers=auth("operator")
        )
        assert (missing.status_code, missing.json()["code"]) == (404, "snapshot_not_found")

        restored = client.post(
            "/v1/index/restore", json={"generation": good}, headers=auth("operator")
        )
        assert restored.status_code == 200, restored.text
        assert restored.json()["gate"].startswith("golden questions v1 passed")
        canary = client.get("/v1/canary", params={"q": VACATION}).json()
        assert canary["cited_documents"] == ["handbook/vacation-and-leave.md"]

        refused = client.post(
            "/v1/index/restore", json={"generation": bad}, headers=auth("operator")
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "snapshot_gate_failed"
        assert "recall@5" in refused.json()["detail"]
        still = client.get("/v1/canary", params={"q": VACATION}).json()
        assert still["cited_documents"] == ["handbook/vacation-and-leave.md"]
        assert still["index_generation"] == canary["index_generation"]
        metrics = client.get("/metrics").text

    marker = read_active(bucket, "region-a")
    assert marker is not None
    assert marker.generation == good
    assert f"switchyard_dialog_index_chunks {float(demo_index.info.chunks)}" in metrics


def _plant(bucket: S3ObjectStore, body: dict[str, Any], generation: int) -> int:
    bucket.put(manifest_key(generation), json.dumps({**body, "generation": generation}).encode())
    return generation


def test_a_hostile_manifest_in_the_bucket_is_refused_naming_the_field(
    tmp_path: Path,
    region_store: Engine,
    minilm: MiniLmEmbedder,
    demo_index: SearchIndex,
    buckets: dict[str, S3ObjectStore],
) -> None:
    """Manifests planted in the bucket by whoever can write it: one whose second segment id
    climbs out of the index store through the first one's staging folder (unchecked, the
    restore empties the sentinel folder beside the store and downloads into it), and one whose
    digest is a path. Each: 422 naming the field; nothing on disk changed, the live index
    answers as before, and the active marker still names the good generation."""
    bucket = buckets["region-a"]
    good = _published(demo_index, tmp_path / "good", bucket)
    standby = tmp_path / "standby"
    app = runtime_app(
        region_store,
        minilm,
        build_index([], minilm),
        store=IndexStore(standby / "index"),
        snapshots=bucket,
    )
    body = json.loads(read_manifest(bucket, good).to_bytes())
    # index/staging/<first segment>/../../../outside: the sentinel beside the store
    climbing = climbing_through_staging(body, good + 1, 1, "outside")
    forged = copy.deepcopy(body)
    forged["index"]["segments"][0]["files"][3]["sha256"] = "../../../latest"
    hostile = {
        _plant(bucket, climbing, good + 1): "manifest.index.segments[1].id",
        _plant(bucket, forged, good + 2): "manifest.index.segments[0].files[3].sha256",
    }

    with TestClient(app) as client:
        restored = client.post(
            "/v1/index/restore", json={"generation": good}, headers=auth("operator")
        )
        assert restored.status_code == 200, restored.text
        canary = client.get("/v1/canary", params={"q": VACATION}).json()
        victim = sentinel(standby / "outside")
        before = tree(standby)

        for generation, field in hostile.items():
            refused = client.post(
                "/v1/index/restore", json={"generation": generation}, headers=auth("operator")
            )
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert (problem["code"], problem["field"]) == ("manifest_invalid", field)
            assert f"generations/{generation:010d}.json: {field}:" in problem["detail"]

        assert tree(standby) == before
        assert intact(victim)
        still = client.get("/v1/canary", params={"q": VACATION}).json()
        assert still["cited_documents"] == canary["cited_documents"]
        assert still["index_generation"] == canary["index_generation"]

    marker = read_active(bucket, "region-a")
    assert marker is not None
    assert marker.generation == good
