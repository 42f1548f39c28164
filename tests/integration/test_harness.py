"""The local harness: idempotent ``up``, ``down`` of exactly the named server, safe PID files."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest

from switchyard.devenv import dns as devdns
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import HOST
from switchyard.devenv.process import PidFile, terminate


def pids(harness: Harness) -> dict[str, int | None]:
    """PIDs of the infrastructure servers ``up`` manages (not Switchyard's own apps)."""
    servers = {s.name for s in harness.services()}
    return {s.name: s.pid for s in harness.status() if s.name in servers}


def states(harness: Harness) -> dict[str, str]:
    servers = {s.name for s in harness.services()}
    return {s.name: s.state for s in harness.status() if s.name in servers}


@pytest.fixture
def all_up(harness: Harness) -> Iterator[Harness]:
    """Every server runs before the test and again after it, whatever the test did."""
    harness.up()
    try:
        yield harness
    finally:
        harness.up()


def signed_update(harness: Harness) -> dns.update.UpdateMessage:
    keyring = dns.tsigkeyring.from_text(
        {devdns.TSIG_KEY_NAME: ("hmac-sha256", harness.creds.tsig_secret)}
    )
    return dns.update.UpdateMessage(
        devdns.ZONE,
        keyring=keyring,
        keyname=dns.name.from_text(devdns.TSIG_KEY_NAME),
        keyalgorithm="hmac-sha256",
    )


def a_records(port: int, name: str) -> set[str]:
    response = dns.query.udp(
        dns.message.make_query(name, dns.rdatatype.A), HOST, port=port, timeout=5
    )
    return {rd.address for rrset in response.answer for rd in rrset}


def test_second_up_starts_nothing_and_keeps_every_process(all_up: Harness) -> None:
    before = pids(all_up)
    assert all(pid is not None for pid in before.values()), before

    results = all_up.up()

    assert {r.name: r.action for r in results} == dict.fromkeys(before, "already running")
    assert pids(all_up) == before
    assert set(states(all_up).values()) == {"running"}


def test_down_stops_only_the_named_server_and_up_restores_its_zone(
    all_up: Harness, tmp_path: Path
) -> None:
    label = f"restart-{uuid.uuid4().hex[:10]}"
    fqdn = f"{label}.{devdns.ZONE}"
    update = signed_update(all_up)
    update.replace(label, 30, "A", "127.0.2.1")
    assert dns.query.tcp(update, HOST, port=all_up.knot.port, timeout=5).rcode() == 0

    before = pids(all_up)
    knot_record = all_up.pidfile(all_up.knot).read()
    assert knot_record is not None
    try:
        stopped = all_up.down(["knot"])
        assert stopped == ["knot"]

        # That very process (PID and start time) is gone, and nothing else was touched.
        copy = PidFile(tmp_path / "knot.pid")
        copy.path.write_text(f"{knot_record.pid} {knot_record.start_time}\n")
        assert copy.alive() is None
        after = pids(all_up)
        assert after["knot"] is None
        assert {n: p for n, p in after.items() if n != "knot"} == {
            n: p for n, p in before.items() if n != "knot"
        }
        now = states(all_up)
        assert now.pop("knot") == "stopped"
        assert set(now.values()) == {"running"}
        assert not all_up.knot.ready()

        results = all_up.up(["knot"])
        assert [(r.name, r.action) for r in results] == [("knot", "started")]
        assert pids(all_up)["knot"] not in (None, knot_record.pid)
        # The update made before the restart was kept in Knot's journal.
        assert a_records(all_up.knot.port, fqdn) == {"127.0.2.1"}
    finally:
        all_up.up(["knot"])
        cleanup = signed_update(all_up)
        cleanup.delete(label)
        dns.query.tcp(cleanup, HOST, port=all_up.knot.port, timeout=5)


def test_pid_file_naming_a_reused_pid_is_not_running_and_never_signalled(
    tmp_path: Path,
) -> None:
    # A live process that is not the one recorded: same PID, different start time.
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        pidfile = PidFile(tmp_path / "server.pid")
        pidfile.path.write_text(f"{bystander.pid} 1\n")

        assert pidfile.alive() is None
        assert terminate(pidfile, signal.SIGTERM, timeout=1.0) is False
        assert bystander.poll() is None  # still running: it was not signalled
        assert not pidfile.path.exists()  # the stale file is cleared
    finally:
        bystander.kill()
        bystander.wait(timeout=10)
