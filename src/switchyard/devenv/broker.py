"""The Kafka-protocol broker (noida-db from PyPI; see INFRA.md for why not Apache Kafka here).

Client code stays plain confluent-kafka, so pointing KAFKA_BOOTSTRAP_SERVERS at a real cluster
works unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from switchyard.devenv.layout import HOST, DevLayout
from switchyard.devenv.process import ProcessSpec
from switchyard.errors import FatalError


def _broker_binary() -> Path:
    try:
        import noida_db
    except ImportError:
        raise FatalError(
            "the broker package noida-db is not installed; run scripts/bootstrap.sh"
        ) from None
    return Path(noida_db.__file__).parent / "noida-db"


class KafkaBroker:
    name = "kafka"

    def __init__(self, layout: DevLayout) -> None:
        self.port = layout.ports["kafka"]
        self.dir = layout.data(self.name)

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [
                str(_broker_binary()),
                "start",
                "--data-dir",
                str(self.dir),
                "--only",
                "kafka",
                "--kafka-port",
                str(self.port),
                "--host",
                HOST,
            ],
        )

    def ready(self) -> bool:
        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap_servers, "socket.timeout.ms": 1000}
        )
        try:
            admin.list_topics(timeout=1)
            return True
        except KafkaException:
            return False

    def configure(self) -> None:
        """Topics are created by the features that own them (never auto-created)."""

    def endpoints(self) -> Mapping[str, str]:
        return {"kafka": self.bootstrap_servers}
