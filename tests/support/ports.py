"""Free loopback port blocks for private copies of the harness (see switchyard.devenv.ports)."""

from __future__ import annotations

from switchyard.devenv.ports import PORT_OFFSETS, free_port_base, port_free

__all__ = ["PORT_OFFSETS", "free_port_base", "port_free"]
