"""Each local server speaks its real protocol with the properties later features rely on.

These are the promises the CDC relay, the object copier, the GSLB writers, the secrets reader
and the alerting rely on; if a server stops keeping one, these tests say which.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import hvac
import hvac.exceptions
import psycopg
import pytest
import requests
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # re-exported by .admin without __all__

from switchyard.devenv import dns as devdns
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import HOST
from switchyard.devenv.postgres import PostgresCluster
from switchyard.devenv.s3 import SeaweedS3

DEADLINE_SECONDS = 30.0
REGIONS = ("region-a", "region-b")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- PostgreSQL -------------------------------------------------------------------------


def clusters(harness: Harness) -> dict[str, PostgresCluster]:
    return {"control": harness.control_db, **harness.region_dbs}


@pytest.mark.parametrize("which", ["control", *REGIONS])
def test_postgres_is_ready_for_logical_decoding_with_bounded_slot_retention(
    harness: Harness, which: str
) -> None:
    cluster = clusters(harness)[which]
    with psycopg.connect(cluster.conninfo(cluster.database)) as conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()
        keep = conn.execute(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'"
        ).fetchone()
    assert wal_level == ("logical",)
    # -1 would let an abandoned slot pin WAL until the disk fills.
    assert keep is not None
    assert keep[0] > 0


@pytest.mark.parametrize("region", REGIONS)
def test_region_database_accepts_a_pgoutput_slot(harness: Harness, region: str) -> None:
    cluster = harness.region_dbs[region]
    slot = unique("smoke").replace("-", "_")
    with psycopg.connect(cluster.conninfo(cluster.database), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            row = conn.execute(
                "SELECT plugin, slot_type, database FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            assert row == ("pgoutput", "logical", cluster.database)
        finally:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        left = conn.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
    assert left == (0,)


# --- Kafka-protocol broker --------------------------------------------------------------


def test_broker_keeps_per_key_order_and_explicit_commits_leave_no_lag(
    kafka_bootstrap: str,
) -> None:
    topic = unique("smoke")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    futures[topic].result(timeout=DEADLINE_SECONDS)
    try:
        metadata = admin.list_topics(topic, timeout=10).topics[topic]
        assert len(metadata.partitions) == 3

        keys = [f"conv-{i}" for i in range(12)]
        per_key = 10
        producer = Producer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
            }
        )
        errors: list[Any] = []
        for seq in range(per_key):
            for key in keys:
                producer.produce(
                    topic,
                    key=key.encode(),
                    value=str(seq).encode(),
                    on_delivery=lambda err, _msg: errors.append(err) if err else None,
                )
        assert producer.flush(DEADLINE_SECONDS) == 0
        assert errors == []

        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": unique("smoke-group"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        seen: dict[str, list[int]] = {k: [] for k in keys}
        expected = len(keys) * per_key
        received = 0
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + DEADLINE_SECONDS
            while received < expected and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                msg_key, msg_value = msg.key(), msg.value()
                assert msg_key is not None
                assert msg_value is not None
                seen[msg_key.decode()].append(int(msg_value))
                received += 1
            assert received == expected
            consumer.commit(asynchronous=False)

            partitions = [TopicPartition(topic, p) for p in range(3)]
            committed = consumer.committed(partitions, timeout=10)
            lag, highs = {}, {}
            for tp in committed:
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                # A partition that never received a message has no committed offset.
                position = tp.offset if tp.offset >= 0 else low
                lag[tp.partition] = high - position
                highs[tp.partition] = high
        finally:
            consumer.close()
        assert lag == {0: 0, 1: 0, 2: 0}
        assert sum(highs.values()) == expected
        assert sum(1 for h in highs.values() if h > 0) >= 2  # keys spread over partitions
        assert seen == {k: list(range(per_key)) for k in keys}
    finally:
        admin.delete_topics([topic])[topic].result(timeout=DEADLINE_SECONDS)


def test_broker_rejects_an_invalid_topic_config(kafka_bootstrap: str) -> None:
    """Topics are created explicitly with checked settings, so a typo must fail loudly."""
    topic = unique("smoke-bad")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=1,
                replication_factor=1,
                config={"cleanup.policy": "not-a-policy"},
            )
        ]
    )
    with pytest.raises(KafkaException):
        futures[topic].result(timeout=DEADLINE_SECONDS)


# --- SeaweedFS S3 ------------------------------------------------------------------------


@pytest.fixture
def s3_key(harness: Harness) -> Iterator[str]:
    """A unique key, with every version of it removed from both regions afterwards."""
    key = f"smoke/{uuid.uuid4().hex}"
    yield key
    for store in harness.s3.values():
        purge(store, key)


def purge(store: SeaweedS3, key: str) -> None:
    client = store.client()
    listed = client.list_object_versions(Bucket=store.bucket, Prefix=key)
    for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
        client.delete_object(Bucket=store.bucket, Key=entry["Key"], VersionId=entry["VersionId"])


def stored_versions(store: SeaweedS3, key: str) -> list[dict[str, Any]]:
    listed = store.client().list_object_versions(Bucket=store.bucket, Prefix=key)
    return [v for v in listed.get("Versions", []) if v["Key"] == key]


@pytest.mark.parametrize("region", REGIONS)
def test_region_bucket_is_versioned(harness: Harness, region: str) -> None:
    store = harness.s3[region]
    assert store.client().get_bucket_versioning(Bucket=store.bucket).get("Status") == "Enabled"


@pytest.mark.parametrize("region", REGIONS)
def test_s3_sha256_checked_put_round_trips(harness: Harness, region: str, s3_key: str) -> None:
    store = harness.s3[region]
    client = store.client()
    body = b"transcript chunk " * 1000
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = client.put_object(Bucket=store.bucket, Key=s3_key, Body=body, ChecksumAlgorithm="SHA256")
    assert put.get("VersionId")
    assert put.get("ChecksumSHA256") == digest
    got = client.get_object(Bucket=store.bucket, Key=s3_key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got.get("ChecksumSHA256") == digest


@pytest.mark.parametrize("region", REGIONS)
def test_s3_rejects_a_put_whose_sha256_does_not_match(
    harness: Harness, region: str, s3_key: str
) -> None:
    store = harness.s3[region]
    client = store.client()
    body = b"the real bytes"
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with pytest.raises(ClientError) as excinfo:
        client.put_object(Bucket=store.bucket, Key=s3_key, Body=body, ChecksumSHA256=wrong)
    assert excinfo.value.response["Error"]["Code"] in {"BadDigest", "InvalidRequest"}
    assert stored_versions(store, s3_key) == []
    # The same put with the right digest is accepted: the digest was the only problem.
    right = base64.b64encode(hashlib.sha256(body).digest()).decode()
    client.put_object(Bucket=store.bucket, Key=s3_key, Body=body, ChecksumSHA256=right)
    assert len(stored_versions(store, s3_key)) == 1


def test_s3_regions_are_separate_stores(harness: Harness, s3_key: str) -> None:
    a, b = harness.s3["region-a"], harness.s3["region-b"]
    assert a.endpoint_url != b.endpoint_url
    a.client().put_object(Bucket=a.bucket, Key=s3_key, Body=b"only in region-a")
    assert a.client().head_object(Bucket=a.bucket, Key=s3_key)["ContentLength"] == 16
    with pytest.raises(ClientError) as excinfo:
        b.client().head_object(Bucket=b.bucket, Key=s3_key)
    assert excinfo.value.response["Error"]["Code"] in {"404", "NoSuchKey", "NoSuchBucket"}
    with pytest.raises(ClientError):
        b.client().head_object(Bucket=a.bucket, Key=s3_key)


# --- Knot: RFC 2136 with TSIG -----------------------------------------------------------


def keyring(secret: str) -> dict[dns.name.Name, dns.tsig.Key]:
    return dns.tsigkeyring.from_text({devdns.TSIG_KEY_NAME: ("hmac-sha256", secret)})


def knot_update(harness: Harness, secret: str | None = None) -> dns.update.UpdateMessage:
    if secret is None:
        secret = harness.creds.tsig_secret
    return dns.update.UpdateMessage(
        devdns.ZONE,
        keyring=keyring(secret),
        keyname=dns.name.from_text(devdns.TSIG_KEY_NAME),
        keyalgorithm="hmac-sha256",
    )


def send(update: dns.update.UpdateMessage, port: int) -> dns.message.Message:
    return dns.query.tcp(update, HOST, port=port, timeout=5)


def a_records(port: int, name: str) -> set[str]:
    response = dns.query.udp(
        dns.message.make_query(name, dns.rdatatype.A), HOST, port=port, timeout=5
    )
    return {rd.address for rrset in response.answer for rd in rrset}


@pytest.fixture
def knot_name(harness: Harness) -> Iterator[str]:
    """A unique owner name in the zone, holding A 127.0.1.1; deleted afterwards."""
    label = unique("smoke")
    fqdn = f"{label}.{devdns.ZONE}"
    update = knot_update(harness)
    update.replace(label, 30, "A", "127.0.1.1")
    assert send(update, harness.knot.port).rcode() == dns.rcode.NOERROR
    yield fqdn
    cleanup = knot_update(harness)
    cleanup.delete(label)
    send(cleanup, harness.knot.port)


def test_knot_applies_a_signed_update_at_once(harness: Harness, knot_name: str) -> None:
    label = knot_name.removesuffix("." + devdns.ZONE)
    assert a_records(harness.knot.port, knot_name) == {"127.0.1.1"}
    update = knot_update(harness)
    update.replace(label, 30, "A", "127.0.2.1")
    assert send(update, harness.knot.port).rcode() == dns.rcode.NOERROR
    assert a_records(harness.knot.port, knot_name) == {"127.0.2.1"}


def test_knot_seeded_record_exists(harness: Harness) -> None:
    assert a_records(harness.knot.port, f"{devdns.RECORD}.{devdns.ZONE}")


def test_knot_refuses_an_update_whose_prerequisite_fails(harness: Harness, knot_name: str) -> None:
    label = knot_name.removesuffix("." + devdns.ZONE)
    update = knot_update(harness)
    update.present(label, "A", "127.0.9.9")  # compare: the current value is 127.0.1.1
    update.replace(label, 30, "A", "127.0.2.1")  # and set
    assert send(update, harness.knot.port).rcode() == dns.rcode.NXRRSET
    assert a_records(harness.knot.port, knot_name) == {"127.0.1.1"}


def test_knot_refuses_an_unsigned_update(harness: Harness, knot_name: str) -> None:
    label = knot_name.removesuffix("." + devdns.ZONE)
    update = dns.update.UpdateMessage(devdns.ZONE)
    update.replace(label, 30, "A", "127.0.2.1")
    # Knot answers an ACL denial with NOTAUTH; BIND answers REFUSED. Either is a refusal.
    assert send(update, harness.knot.port).rcode() in {dns.rcode.REFUSED, dns.rcode.NOTAUTH}
    assert a_records(harness.knot.port, knot_name) == {"127.0.1.1"}


def test_knot_rejects_an_update_signed_with_the_wrong_key(harness: Harness, knot_name: str) -> None:
    label = knot_name.removesuffix("." + devdns.ZONE)
    wrong_secret = base64.b64encode(b"\x01" * 32).decode()
    assert wrong_secret != harness.creds.tsig_secret
    update = knot_update(harness, wrong_secret)
    update.replace(label, 30, "A", "127.0.2.1")
    try:
        rcode = send(update, harness.knot.port).rcode()
    except dns.tsig.PeerBadSignature:
        rcode = dns.rcode.NOTAUTH
    assert rcode == dns.rcode.NOTAUTH
    assert a_records(harness.knot.port, knot_name) == {"127.0.1.1"}


# --- PowerDNS ----------------------------------------------------------------------------


def pdns_patch(
    harness: Harness, rrsets: list[dict[str, Any]], api_key: str | None = None
) -> requests.Response:
    return requests.patch(
        f"{harness.pdns.api_url}/zones/{devdns.ZONE}",
        json={"rrsets": rrsets},
        headers={"X-API-Key": api_key or harness.creds.pdns_api_key},
        timeout=5,
    )


def rrset(
    name: str, rtype: str, contents: list[str], changetype: str = "REPLACE"
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": rtype, "changetype": changetype}
    if changetype == "REPLACE":
        out["ttl"] = 30
        out["records"] = [{"content": c, "disabled": False} for c in contents]
    return out


@pytest.fixture
def pdns_names(harness: Harness) -> Iterator[list[str]]:
    """Unique owner names in the PowerDNS zone; their A and LUA rrsets are deleted afterwards."""
    names: list[str] = []
    yield names
    if names:
        pdns_patch(harness, [rrset(n, t, [], "DELETE") for n in names for t in ("A", "LUA")])


def test_pdns_api_change_is_answered_over_dns(harness: Harness, pdns_names: list[str]) -> None:
    name = f"{unique('smoke')}.{devdns.ZONE}"
    pdns_names.append(name)
    assert pdns_patch(harness, [rrset(name, "A", ["127.0.2.1"])]).status_code == 204
    assert a_records(harness.pdns.dns_port, name) == {"127.0.2.1"}


def test_pdns_lua_record_answers_by_weight(harness: Harness, pdns_names: list[str]) -> None:
    # pickwrandom takes {weight, address} pairs. Two records with the weight-100 address in
    # different list positions show that the weight, not the position, decides.
    first = f"{unique('smoke-w')}.{devdns.ZONE}"
    second = f"{unique('smoke-w')}.{devdns.ZONE}"
    pdns_names += [first, second]
    response = pdns_patch(
        harness,
        [
            rrset(first, "LUA", ["A \"pickwrandom({{100, '127.0.1.1'}, {0, '127.0.2.1'}})\""]),
            rrset(second, "LUA", ["A \"pickwrandom({{0, '127.0.1.1'}, {100, '127.0.2.1'}})\""]),
        ],
    )
    assert response.status_code == 204, response.text
    for _ in range(10):
        assert a_records(harness.pdns.dns_port, first) == {"127.0.1.1"}
        assert a_records(harness.pdns.dns_port, second) == {"127.0.2.1"}


def test_pdns_api_rejects_a_wrong_key(harness: Harness, pdns_names: list[str]) -> None:
    name = f"{unique('smoke')}.{devdns.ZONE}"
    pdns_names.append(name)
    response = pdns_patch(harness, [rrset(name, "A", ["127.0.2.1"])], api_key="wrong-key")
    assert response.status_code == 401
    assert a_records(harness.pdns.dns_port, name) == set()


# --- OpenBao -----------------------------------------------------------------------------


@pytest.fixture
def approle_client(harness: Harness) -> hvac.Client:
    client = hvac.Client(url=harness.vault.addr, timeout=5)
    role = harness.vault.approle()
    client.auth.approle.login(role_id=role["role_id"], secret_id=role["secret_id"])
    assert client.is_authenticated()
    return client


def test_approle_reads_the_seeded_api_tokens(approle_client: hvac.Client) -> None:
    secret = approle_client.secrets.kv.v2.read_secret_version(
        path="switchyard/api-tokens", mount_point="secret", raise_on_deleted_version=True
    )
    tokens = secret["data"]["data"]
    assert set(tokens) == {"viewer", "operator", "admin"}
    assert all(isinstance(v, str) and v for v in tokens.values())


def test_approle_cannot_write_its_secrets(approle_client: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        approle_client.secrets.kv.v2.create_or_update_secret(
            path="switchyard/api-tokens", secret={"admin": "stolen"}, mount_point="secret"
        )


def test_approle_cannot_read_outside_its_prefix(
    harness: Harness, approle_client: hvac.Client
) -> None:
    root = harness.vault.root_client()
    path = unique("smoke-outside")
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"x": "y"}, mount_point="secret")
    try:
        with pytest.raises(hvac.exceptions.Forbidden):
            approle_client.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True
            )
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point="secret")


# --- Prometheus --------------------------------------------------------------------------


def test_prometheus_is_ready_and_scrapes_itself(harness: Harness) -> None:
    url = harness.prometheus.url
    assert requests.get(f"{url}/-/ready", timeout=5).status_code == 200
    deadline = time.monotonic() + DEADLINE_SECONDS
    values: list[str] = []
    while time.monotonic() < deadline:
        body = requests.get(
            f"{url}/api/v1/query", params={"query": 'up{job="prometheus"}'}, timeout=5
        ).json()
        assert body["status"] == "success"
        values = [r["value"][1] for r in body["data"]["result"]]
        if values == ["1"]:
            break
        time.sleep(1)
    assert values == ["1"]
