"""Free loopback port blocks for private copies of the harness (tests and benchmarks that
break, restart or reroute servers)."""

from __future__ import annotations

import random
import socket

from switchyard.devenv.layout import DEFAULT_PORT_BASE, HOST, DevPorts

# Ports a harness uses relative to its base: the named ones plus SeaweedFS's two blocks.
PORT_OFFSETS = sorted({*DevPorts(0).all().values(), *range(20, 30), *range(40, 50)})


def port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port_base() -> int:
    """A port base whose whole block is free now (randomised, so parallel sessions differ)."""
    rng = random.Random()  # noqa: S311 - spreading port choices, not a secret
    for _ in range(50):
        # Below the kernel's ephemeral range (32768+), where client sockets could take a port.
        base = rng.randrange(20000, 32500, 100)
        if abs(base - DEFAULT_PORT_BASE) < 200:
            continue
        if all(port_free(base + off) for off in PORT_OFFSETS):
            return base
    raise RuntimeError("no free block of loopback ports for a private harness")
