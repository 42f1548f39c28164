"""The local harness: idempotent ``up``, ``down`` of exactly the named server, safe PID files.

These tests run a private copy of the whole stack (own data folder, own port block) rather
than the session's shared servers: stopping a shared server would break whatever else is
using it, and other test sessions starting or stopping shared servers would make PID and
"already running" assertions racy. The private stack also proves a start from nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
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

from support.ports import free_port_base
from switchyard.devenv import dns as devdns
from switchyard.devenv.harness import Harness, UpResult
from switchyard.devenv.layout import HOST, DevLayout, DevPorts
from switchyard.devenv.process import PidFile, terminate


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[Harness, list[UpResult]]]:
    """A whole stack of its own, started from nothing; stopped and deleted afterwards."""
    # Not under pytest's tmp dir: that is 0700 to root, and PostgreSQL and Knot run as
    # other users that must reach their data folders.
    root = Path(tempfile.mkdtemp(prefix="switchyard-harness-test-"))
    root.chmod(0o755)
    harness = Harness(DevLayout(root=root, ports=DevPorts(free_port_base())))
    try:
        results = harness.up()
        yield harness, results
    finally:
        try:
            harness.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stack(private: tuple[Harness, list[UpResult]]) -> Iterator[Harness]:
    """The private stack, with every server running again after the test whatever it did."""
    harness = private[0]
    try:
        yield harness
    finally:
        harness.up()


def pids(harness: Harness) -> dict[str, int | None]:
    """PIDs of the infrastructure servers ``up`` manages (not Switchyard's own apps)."""
    servers = {s.name for s in harness.services()}
    return {s.name: s.pid for s in harness.status() if s.name in servers}


def states(harness: Harness) -> dict[str, str]:
    servers = {s.name for s in harness.services()}
    return {s.name: s.state for s in harness.status() if s.name in servers}


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


def test_first_up_starts_every_server_from_nothing(
    private: tuple[Harness, list[UpResult]],
) -> None:
    harness, results = private
    names = [s.name for s in harness.services()]
    assert [(r.name, r.action) for r in results] == [(n, "started") for n in names]
    assert set(states(harness).values()) == {"running"}


def test_second_up_starts_nothing_and_keeps_every_process(stack: Harness) -> None:
    before = pids(stack)
    assert None not in before.values(), before

    results = stack.up()

    assert {r.name: r.action for r in results} == dict.fromkeys(before, "already running")
    assert pids(stack) == before
    assert set(states(stack).values()) == {"running"}


def test_down_stops_only_the_named_server_and_up_restores_its_zone(
    stack: Harness, tmp_path: Path
) -> None:
    label = f"restart-{uuid.uuid4().hex[:10]}"
    fqdn = f"{label}.{devdns.ZONE}"
    update = signed_update(stack)
    update.replace(label, 30, "A", "127.0.2.1")
    response = dns.query.tcp(update, HOST, port=stack.knot.port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR

    before = pids(stack)
    knot_record = stack.pidfile(stack.knot).read()
    assert knot_record is not None

    assert stack.down(["knot"]) == ["knot"]

    # That very process (PID and start time) is gone, and nothing else was touched.
    copy = PidFile(tmp_path / "knot.pid")
    copy.path.write_text(f"{knot_record.pid} {knot_record.start_time}\n")
    assert copy.alive() is None
    after = pids(stack)
    assert after.pop("knot") is None
    assert after == {n: p for n, p in before.items() if n != "knot"}
    now = states(stack)
    assert now.pop("knot") == "stopped"
    assert set(now.values()) == {"running"}
    assert not stack.knot.ready()

    results = stack.up(["knot"])

    assert [(r.name, r.action) for r in results] == [("knot", "started")]
    assert pids(stack)["knot"] not in (None, knot_record.pid)
    # The update made before the restart was kept in Knot's journal.
    assert a_records(stack.knot.port, fqdn) == {"127.0.2.1"}


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
        with contextlib.suppress(ProcessLookupError):
            bystander.kill()
        bystander.wait(timeout=10)
