"""The control plane's snapshot schedule: copy the primary's newest generation to every other
region's bucket, then ask each of those regions' runtimes to restore it.

``sync_once`` never raises for one region's trouble: it reports a sentence per region, so one
unreachable bucket or a failed gate does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from switchyard.errors import SwitchyardError, TransientError
from switchyard.ports.objects import ObjectStore
from switchyard.snapshots.layout import read_active
from switchyard.snapshots.replicate import replicate

# Asks a region's runtime to restore a generation; returns (restored, the runtime's sentence).
RestoreRequest = Callable[[str, int], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class RegionSync:
    region: str
    ok: bool
    sentence: str


def sync_once(
    stores: Mapping[str, ObjectStore], primary: str, restore: RestoreRequest | None
) -> list[RegionSync]:
    out = []
    for region, store in stores.items():
        if region == primary:
            continue
        try:
            copied = replicate(stores[primary], store)
            if copied.generation is None:
                out.append(RegionSync(region, True, f"{primary} has published nothing yet"))
                continue
            said = (
                f"generation {copied.generation}: {copied.copied_files} files "
                f"({copied.copied_bytes} bytes) copied to {region}"
            )
            active = read_active(store, region)
            ok = True
            if restore is not None and (active is None or active.generation < copied.generation):
                ok, answer = restore(region, copied.generation)
                said += "; " + answer
            out.append(RegionSync(region, ok, said))
        except SwitchyardError as exc:
            out.append(RegionSync(region, False, f"{region}: {exc}"))
    return out


def runtime_restorer(
    runtime_urls: Mapping[str, str], token: str, *, timeout_seconds: float = 600.0
) -> RestoreRequest:
    """Restore requests sent to each region's runtime (``POST /v1/index/restore``)."""

    def request(region: str, generation: int) -> tuple[bool, str]:
        url = runtime_urls[region].rstrip("/") + "/v1/index/restore"
        try:
            response = httpx.post(
                url,
                json={"generation": generation},
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"runtime of {region} unreachable: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200:
            why = body.get("detail") or f"HTTP {response.status_code}"
            return False, f"restore refused ({body.get('code', 'error')}): {why}"
        return True, f"restored on {region}: {body['gate']}"

    return request
