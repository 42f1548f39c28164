"""Helpers for tests against the real OpenBao: a root client and a KV v2 mount of their own.

Import as ``from support.vault import ...``: pytest puts ``tests/`` on ``sys.path`` because
``tests/conftest.py`` sits in a directory without ``__init__.py``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import hvac
import hvac.exceptions

KV_MOUNT = "switchyard-test-kv"
"""A mount of our own, so tests do not depend on the dev server's default ``secret/``."""


def root_client(addr: str, token: str) -> Any:
    return hvac.Client(url=addr, token=token, timeout=5)


def ensure_kv_v2(client: Any, mount: str = KV_MOUNT) -> str:
    """Enable KV v2 at ``mount`` unless present; return once the mount accepts writes."""
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if f"{mount}/" not in mounts:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    # A fresh KV v2 mount refuses writes while it upgrades its storage (well under a second).
    deadline = time.monotonic() + 15
    while True:
        try:
            client.secrets.kv.v2.create_or_update_secret(
                "ready-probe", secret={"ok": "yes"}, mount_point=mount
            )
            return mount
        except hvac.exceptions.VaultError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def unique_path(prefix: str = "contract") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"
