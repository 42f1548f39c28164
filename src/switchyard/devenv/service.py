"""The shape every local server of the harness has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from switchyard.devenv.process import ProcessSpec


class DevService(Protocol):
    """One server the harness runs on loopback.

    ``prepare`` and ``configure`` are idempotent: running them on a prepared data folder or a
    configured server changes nothing.
    """

    name: str

    def prepare(self) -> None:
        """Create the data folder and config files (before the process starts)."""

    def process(self) -> ProcessSpec:
        """The foreground command that runs the server."""

    def ready(self) -> bool:
        """True once the server answers its own protocol (not just an open port)."""

    def configure(self) -> None:
        """Create what the project needs inside the running server (databases, buckets...)."""

    def endpoints(self) -> Mapping[str, str]:
        """Human-readable addresses, shown by ``status`` and the demo."""
