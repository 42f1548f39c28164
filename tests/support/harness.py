"""A private harness on free ports, for tests that break or reroute servers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from support.ports import free_port_base
from switchyard.devenv.harness import Harness
from switchyard.devenv.stacks import private_harness as _private_harness


@contextmanager
def private_harness(prefix: str, servers: Sequence[str]) -> Iterator[Harness]:
    with _private_harness(prefix, servers, free_port_base()) as harness:
        yield harness
