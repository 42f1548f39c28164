"""A standby runtime restoring a snapshot through its API: the real model, the demo corpus's
golden questions as the gate, SeaweedFS as the bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from support.runtime import auth, runtime_app
from switchyard.adapters.objects_s3 import S3ObjectStore
from switchyard.dialog.documents import load_corpus
from switchyard.dialog.embedding import MiniLmEmbedder
from switchyard.dialog.index import SearchIndex, build_index
from switchyard.dialog.store import IndexStore
from switchyard.snapshots.layout import read_active
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
