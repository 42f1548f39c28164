"""A private harness: its own folder and ports, for tests that break or reroute servers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from support.ports import free_port_base
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import DevLayout, DevPorts


@contextmanager
def private_harness(prefix: str, servers: Sequence[str]) -> Iterator[Harness]:
    """``servers`` up in a fresh folder on free ports; everything stopped and deleted after."""
    # Not under pytest's tmp dir: PostgreSQL runs as another user that must reach its folder.
    root = Path(tempfile.mkdtemp(prefix=f"switchyard-{prefix}-"))
    root.chmod(0o755)
    harness = Harness(DevLayout(root=root, ports=DevPorts(free_port_base())))
    try:
        harness.up(servers)
        yield harness
    finally:
        try:
            harness.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)
