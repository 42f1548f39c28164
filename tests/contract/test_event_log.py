"""Event log contract: the in-memory twin and Kafka (the harness broker, or the cluster that
KAFKA_BOOTSTRAP_SERVERS names).

Every test creates its own topics (``test-events-<random>``) and consumer groups, and deletes
the topics afterwards. Nothing sleeps: reads poll with a deadline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from uuid import uuid4

import pytest
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient

from support.ports import closed_port
from switchyard.adapters.events_kafka import KafkaPublisher, KafkaSubscriber, KafkaTopics
from switchyard.adapters.events_memory import InMemoryEventLog
from switchyard.errors import FatalError, TransientError
from switchyard.ports.events import (
    AckCallback,
    Publisher,
    Record,
    StartOffsets,
    Subscriber,
    TopicPartition,
    Topics,
)

QUICK = 0.3  # seconds: how long a test waits on a server that is not there
READ_WITHIN = 10.0  # seconds: how long a read waits for records that should arrive


class Rig:
    """One adapter's ports, the hooks the suite needs, and cleanup of what a test made."""

    def __init__(
        self,
        topics: Topics,
        publisher: Callable[[], Publisher],
        subscriber: Callable[[str], Subscriber],
        truncate: Callable[[TopicPartition, int], None],
        unreachable: Callable[[], tuple[Topics, Publisher, Subscriber]],
    ) -> None:
        self.topics = topics
        self._publisher = publisher
        self._subscriber = subscriber
        self.truncate = truncate
        self._unreachable = unreachable
        self._opened: list[Publisher | Subscriber] = []
        self._created: list[str] = []

    def topic(self, partitions: int = 1) -> str:
        name = unique("test-events")
        self.topics.ensure(name, partitions=partitions)
        self._created.append(name)
        return name

    def publisher(self) -> Publisher:
        publisher = self._publisher()
        self._opened.append(publisher)
        return publisher

    def subscriber(self, group_id: str | None = None) -> Subscriber:
        subscriber = self._subscriber(group_id or unique("test-group"))
        self._opened.append(subscriber)
        return subscriber

    def unreachable(self) -> tuple[Topics, Publisher, Subscriber]:
        topics, publisher, subscriber = self._unreachable()
        self._opened += [publisher, subscriber]
        return topics, publisher, subscriber

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()
        for name in self._created:
            self.topics.delete(name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


def _memory_rig() -> Rig:
    log = InMemoryEventLog()

    def unreachable() -> tuple[Topics, Publisher, Subscriber]:
        down = InMemoryEventLog()
        down.set_reachable(False)
        return down.topics(), down.publisher(), down.subscriber(unique("test-group"))

    return Rig(log.topics(), log.publisher, log.subscriber, log.truncate, unreachable)


def _kafka_rig(bootstrap: str) -> Rig:
    def subscriber(group_id: str) -> Subscriber:
        return KafkaSubscriber(bootstrap, group_id=group_id, client_id="contract")

    def truncate(partition: TopicPartition, before: int) -> None:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wanted = KafkaPartition(partition.topic, partition.partition, before)
        for future in admin.delete_records([wanted], request_timeout=QUICK * 10).values():
            future.result()

    def unreachable() -> tuple[Topics, Publisher, Subscriber]:
        dead = f"127.0.0.1:{closed_port()}"
        return (
            KafkaTopics(dead, timeout_seconds=QUICK),
            KafkaPublisher(dead, client_id="contract", timeout_seconds=QUICK),
            KafkaSubscriber(
                dead, group_id=unique("test-group"), client_id="contract", timeout_seconds=QUICK
            ),
        )

    return Rig(
        KafkaTopics(bootstrap),
        lambda: KafkaPublisher(bootstrap, client_id="contract"),
        subscriber,
        truncate,
        unreachable,
    )


@pytest.fixture(params=["memory", "kafka"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    if request.param == "memory":
        built = _memory_rig()
    else:
        # Looked up here, not declared, so the memory half runs without a broker.
        built = _kafka_rig(request.getfixturevalue("kafka_bootstrap"))
    yield built
    built.close()


# -- helpers -----------------------------------------------------------------------------------


def from_earliest(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int | None]:
    return dict.fromkeys(partitions)


def at(offsets: Mapping[TopicPartition, int]) -> StartOffsets:
    return lambda partitions: {tp: offsets.get(tp) for tp in partitions}


def read(subscriber: Subscriber, count: int) -> list[Record]:
    """Fetch until ``count`` records arrived, or READ_WITHIN seconds passed."""
    deadline = time.monotonic() + READ_WITHIN
    records: list[Record] = []
    while len(records) < count and time.monotonic() < deadline:
        records += subscriber.fetch(count - len(records), 0.2)
    return records


def publish_all(publisher: Publisher, topic: str, values: Sequence[bytes]) -> None:
    for value in values:
        publisher.publish(topic, b"key", value)
    assert publisher.flush(READ_WITHIN) == 0


def collect(acks: list[tuple[int, Exception | None]], number: int) -> AckCallback:
    return lambda error: acks.append((number, error))


def values(records: Sequence[Record]) -> list[bytes | None]:
    return [r.value for r in records]


# -- topics ------------------------------------------------------------------------------------


def test_ensure_is_idempotent_and_keeps_an_existing_topic(rig: Rig) -> None:
    name = rig.topic(partitions=3)
    rig.topics.ensure(name, partitions=3)
    rig.topics.ensure(name, partitions=1)
    assert rig.topics.exists(name)
    subscriber = rig.subscriber()
    assert [subscriber.high_watermark(TopicPartition(name, p)) for p in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "config", [{"cleanup.policy": "sometimes"}, {"no.such.setting": "1"}], ids=["value", "name"]
)
def test_a_rejected_topic_config_is_fatal(rig: Rig, config: dict[str, str]) -> None:
    name = unique("test-events")
    with pytest.raises(FatalError, match=re.escape(name)):
        rig.topics.ensure(name, config=config)
    assert not rig.topics.exists(name)


def test_a_missing_topic_is_never_auto_created(rig: Rig) -> None:
    missing = unique("test-events-missing")
    publisher = rig.publisher()
    with pytest.raises(FatalError, match=re.escape(missing)):
        publisher.publish(missing, b"key", b"value")
    assert publisher.flush(READ_WITHIN) == 0
    subscriber = rig.subscriber()
    with pytest.raises(FatalError, match=re.escape(missing)):
        subscriber.subscribe([missing], from_earliest)
    with pytest.raises(FatalError):
        subscriber.commit({TopicPartition(missing, 0): 1})
    with pytest.raises(FatalError):
        subscriber.high_watermark(TopicPartition(missing, 0))
    assert not rig.topics.exists(missing)


def test_a_recreated_topic_starts_again_at_offset_zero(rig: Rig) -> None:
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publish_all(rig.publisher(), name, [b"old-0", b"old-1", b"old-2"])

    rig.topics.delete(name)
    assert not rig.topics.exists(name)
    rig.topics.delete(name)  # already gone: no error
    rig.topics.ensure(name)

    subscriber = rig.subscriber()
    assert subscriber.high_watermark(tp) == 0
    # A new publisher: one that wrote to the old topic has stopped (next test).
    publish_all(rig.publisher(), name, [b"new-0"])
    subscriber.subscribe([name], from_earliest)
    [record] = read(subscriber, 1)
    assert (record.offset, record.value) == (0, b"new-0")


def test_a_publisher_stops_when_a_topic_it_wrote_to_is_recreated(rig: Rig) -> None:
    """Its record sequence no longer matches the new partition's: it must fail loudly, with
    every record it holds answered, never acknowledge into a gap."""
    name = rig.topic()
    publisher = rig.publisher()
    publish_all(publisher, name, [b"old-0", b"old-1"])
    rig.topics.delete(name)
    rig.topics.ensure(name)

    acks: list[tuple[int, Exception | None]] = []
    for n in range(3):
        publisher.publish(name, b"key", b"%d" % n, on_ack=collect(acks, n))
    with pytest.raises(FatalError):
        publisher.flush(READ_WITHIN)
    assert [n for n, _ in acks] == [0, 1, 2]
    assert all(isinstance(error, FatalError) for _, error in acks)
    with pytest.raises(FatalError):
        publisher.publish(name, b"key", b"late")
    assert rig.subscriber().high_watermark(TopicPartition(name, 0)) == 0


# -- publishing --------------------------------------------------------------------------------


def test_records_of_one_key_keep_publish_order_in_one_partition(rig: Rig) -> None:
    name = rig.topic(partitions=3)
    keys = [f"key-{n % 6}".encode() for n in range(60)]
    publisher = rig.publisher()
    for seq, key in enumerate(keys):
        publisher.publish(name, key, str(seq).encode())
    assert publisher.flush(READ_WITHIN) == 0

    subscriber = rig.subscriber()
    subscriber.subscribe([name], from_earliest)
    records = read(subscriber, len(keys))
    assert len(records) == len(keys)
    for key in set(keys):
        mine = [r for r in records if r.key == key]
        assert len({r.partition for r in mine}) == 1
        published = [str(seq).encode() for seq, k in enumerate(keys) if k == key]
        assert values(mine) == published
    assert len({r.partition for r in records}) > 1  # distinct keys spread out


def test_on_ack_runs_once_per_record_in_publish_order(rig: Rig) -> None:
    # One partition: Kafka orders acknowledgements per partition only.
    name = rig.topic()
    publisher = rig.publisher()
    acks: list[tuple[int, Exception | None]] = []
    for n in range(50):
        publisher.publish(name, b"key", b"%d" % n, on_ack=collect(acks, n))
    assert publisher.flush(READ_WITHIN) == 0
    assert acks == [(n, None) for n in range(50)]
    publisher.poll(0)
    assert publisher.flush(QUICK) == 0
    assert len(acks) == 50


def test_on_ack_only_where_given_as_for_transactions(rig: Rig) -> None:
    """The CDC source's pattern: an ack on the last record of each transaction."""
    name = rig.topic()
    publisher = rig.publisher()
    acks: list[tuple[int, Exception | None]] = []
    for n in range(12):
        last_of_transaction = n % 4 == 3
        ack = collect(acks, n) if last_of_transaction else None
        publisher.publish(name, b"key", b"%d" % n, on_ack=ack)
    assert publisher.flush(READ_WITHIN) == 0
    assert acks == [(3, None), (7, None), (11, None)]
    assert rig.subscriber().high_watermark(TopicPartition(name, 0)) == 12


def test_records_carry_key_value_and_headers(rig: Rig) -> None:
    name = rig.topic()
    publisher = rig.publisher()
    publisher.publish(name, None, None, headers=[("source", b"pg"), ("txid", b"42")])
    publisher.publish(name, b"k", b"v")
    assert publisher.flush(READ_WITHIN) == 0
    subscriber = rig.subscriber()
    subscriber.subscribe([name], from_earliest)
    tombstone, plain = read(subscriber, 2)
    assert (tombstone.key, tombstone.value) == (None, None)
    assert dict(tombstone.headers) == {"source": b"pg", "txid": b"42"}
    assert (plain.key, plain.value, dict(plain.headers)) == (b"k", b"v", {})
    assert tombstone.timestamp_ms > 0
    assert tombstone.position == TopicPartition(name, 0)


def test_close_before_flush_still_answers_every_on_ack_once(rig: Rig) -> None:
    name = rig.topic()
    publisher = rig.publisher()
    acks: list[tuple[int, Exception | None]] = []
    for n in range(20):
        publisher.publish(name, b"key", b"%d" % n, on_ack=collect(acks, n))
    publisher.close()
    assert sorted(n for n, _ in acks) == list(range(20))
    with pytest.raises(FatalError):
        publisher.publish(name, b"key", b"late")


# -- subscribing -------------------------------------------------------------------------------


def test_a_subscriber_starts_at_the_offset_it_is_given(rig: Rig) -> None:
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publish_all(rig.publisher(), name, [b"v0", b"v1", b"v2", b"v3", b"v4"])
    subscriber = rig.subscriber()
    subscriber.subscribe([name], at({tp: 3}))
    records = read(subscriber, 2)
    assert [(r.offset, r.value) for r in records] == [(3, b"v3"), (4, b"v4")]
    assert subscriber.fetch(10, 0.2) == []


def test_start_none_reads_from_the_earliest_record_kept(rig: Rig) -> None:
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publish_all(rig.publisher(), name, [b"v0", b"v1", b"v2", b"v3", b"v4"])
    rig.truncate(tp, 2)
    subscriber = rig.subscriber()
    subscriber.subscribe([name], from_earliest)
    assert [r.offset for r in read(subscriber, 3)] == [2, 3, 4]


@pytest.mark.parametrize("start", [0, 100], ids=["below-kept", "beyond-end"])
def test_a_start_outside_the_kept_records_reads_from_the_earliest(rig: Rig, start: int) -> None:
    """A stale stored position (retention moved on, or the topic was recreated)."""
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publish_all(rig.publisher(), name, [b"v0", b"v1", b"v2", b"v3", b"v4"])
    rig.truncate(tp, 2)
    subscriber = rig.subscriber()
    subscriber.subscribe([name], at({tp: start}))
    assert [r.offset for r in read(subscriber, 3)] == [2, 3, 4]


def test_commit_is_shared_by_the_group_and_gives_the_lag(rig: Rig) -> None:
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publish_all(rig.publisher(), name, [b"v0", b"v1", b"v2", b"v3", b"v4"])
    group = unique("test-group")
    subscriber = rig.subscriber(group)
    assert subscriber.committed(tp) is None
    subscriber.commit({tp: 2})
    assert subscriber.committed(tp) == 2
    assert subscriber.high_watermark(tp) == 5  # lag = 5 - 2
    assert rig.subscriber(group).committed(tp) == 2
    assert rig.subscriber().committed(tp) is None  # another group


def test_a_second_member_resumes_after_what_the_first_committed(rig: Rig) -> None:
    name = rig.topic()
    tp = TopicPartition(name, 0)
    publisher = rig.publisher()
    publish_all(publisher, name, [b"v0", b"v1", b"v2"])
    group = unique("test-group")

    first = rig.subscriber(group)
    first.subscribe([name], from_earliest)
    seen = read(first, 3)
    assert values(seen) == [b"v0", b"v1", b"v2"]
    first.commit({tp: seen[-1].offset + 1})
    first.close()

    publish_all(publisher, name, [b"v3", b"v4"])
    second = rig.subscriber(group)
    second.subscribe([name], lambda partitions: {p: second.committed(p) for p in partitions})
    assert values(read(second, 2)) == [b"v3", b"v4"]
    assert second.fetch(10, 0.2) == []


# -- outages -----------------------------------------------------------------------------------


def test_an_unreachable_log_is_a_transient_error(rig: Rig) -> None:
    topics, publisher, subscriber = rig.unreachable()
    name = unique("test-events")
    tp = TopicPartition(name, 0)
    with pytest.raises(TransientError):
        topics.exists(name)
    with pytest.raises(TransientError):
        topics.ensure(name)
    with pytest.raises(TransientError):
        publisher.publish(name, b"key", b"value")
    with pytest.raises(TransientError):
        subscriber.committed(tp)
    with pytest.raises(TransientError):
        subscriber.high_watermark(tp)
