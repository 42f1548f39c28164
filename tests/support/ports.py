"""Loopback ports for tests: free port blocks for private copies of the harness (see
switchyard.devenv.ports), and a port nothing listens on."""

from __future__ import annotations

import socket

from switchyard.devenv.ports import PORT_OFFSETS, free_port_base, port_free

__all__ = ["PORT_OFFSETS", "closed_port", "free_port_base", "port_free"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
