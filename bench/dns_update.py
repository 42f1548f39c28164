"""Benchmark: how long one compare-and-set DNS update takes through each provider adapter.

Against the running local servers (``switchyard dev up``), on an owner name of its own
(``bench-<random>.gslb.switchyard.test.``, deleted at the end; ``chat`` is never touched):

- ``apply``: one ``apply([update])`` flipping the record between two addresses: for Knot a
  TSIG-signed RFC 2136 UPDATE with a prerequisite (over TCP, then UDP); for PowerDNS the
  adapter's read-compare-PATCH.
- ``route_to``: the controller's whole step for one provider: read, plan, apply.

After every update the authoritative server is asked once; the last column counts answers
that did not show the new address yet (should be 0). Figures only; nothing is asserted.

    .venv/bin/python bench/dns_update.py [--updates 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from uuid import uuid4

from switchyard.adapters.dns_powerdns import PowerDnsApiProvider
from switchyard.adapters.dns_rfc2136 import Rfc2136DnsProvider, TsigKey
from switchyard.controller.gslb import route_to
from switchyard.devenv.dns import TSIG_KEY_NAME, ZONE
from switchyard.devenv.harness import Harness
from switchyard.domain.dns import Change, plan, single
from switchyard.domain.secrets import Secret
from switchyard.ports.dns import DnsProvider

ADDRESSES = ("127.0.1.1", "127.0.2.1")
TTL = 30


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed_applies(provider: DnsProvider, name: str, updates: int) -> tuple[list[float], int]:
    """Seconds per ``apply`` of one update, and how many next answers were stale."""
    current = single(name, TTL, ADDRESSES[0])
    provider.apply([Change("create", None, current)])
    samples, stale = [], 0
    for i in range(updates):
        target = single(name, TTL, ADDRESSES[(i + 1) % 2])
        t0 = time.perf_counter()
        provider.apply([Change("update", current, target)])
        samples.append(time.perf_counter() - t0)
        stale += provider.answer(name).addresses != target.values
        current = target
    provider.apply([Change("delete", current, None)])
    return samples, stale


def timed_routes(provider: DnsProvider, name: str, updates: int) -> tuple[list[float], int]:
    """Seconds per ``route_to`` on one provider (read + plan + apply), and stale answers."""
    samples, stale = [], 0
    for i in range(updates):
        target = single(name, TTL, ADDRESSES[i % 2])
        (update,) = route_to([provider], name, target)
        samples.append(update.seconds)
        stale += provider.answer(name).addresses != target.values
    provider.apply(plan(provider.records(name), []))
    return samples, stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()

    h = Harness.from_env()
    key = TsigKey(TSIG_KEY_NAME, "hmac-sha256", Secret(h.creds.tsig_secret))
    adapters: dict[str, Callable[[], DnsProvider]] = {
        "knot tcp": lambda: Rfc2136DnsProvider(ZONE, "127.0.0.1", port=h.knot.port, tsig=key),
        "knot udp": lambda: Rfc2136DnsProvider(
            ZONE, "127.0.0.1", port=h.knot.port, tsig=key, transport="udp"
        ),
        "powerdns": lambda: PowerDnsApiProvider(
            ZONE, h.pdns.api_url, api_key=Secret(h.creds.pdns_api_key)
        ),
    }

    print(f"{args.updates} updates each, one owner name, two addresses alternating\n")
    print(f"{'provider':<10} {'step':<9} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'stale':>6}")
    for label, build in adapters.items():
        provider = build()
        for step, run in (("apply", timed_applies), ("route_to", timed_routes)):
            name = f"bench-{uuid4().hex[:10]}.{ZONE}"
            samples, stale = run(provider, name, args.updates)
            ms = [s * 1000 for s in samples]
            print(
                f"{label:<10} {step:<9} {statistics.median(ms):>7.2f} "
                f"{percentile(ms, 0.95):>7.2f} {max(ms):>7.2f} {stale:>6}"
            )
    print("\napply = one compare-and-set write; route_to = read + plan + write")


if __name__ == "__main__":
    main()
