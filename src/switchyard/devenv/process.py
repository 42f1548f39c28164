"""Start and stop one local server process, identified by a PID file.

Invariants:
- A PID file holds the PID *and* the kernel start time of the process, so a stale file whose
  PID was reused by another program is never mistaken for our server (and never signalled).
- ``stop`` signals only processes recorded by ``start``; it never searches by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from switchyard.errors import FatalError


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one server in the foreground."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # When running as root, drop to this user (PostgreSQL refuses root; Knot should not need it).
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass(frozen=True)
class Recorded:
    pid: int
    start_time: str
    stop_signal: signal.Signals = signal.SIGTERM


def _proc_start_time(pid: int) -> str | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it is wrapped in parentheses.
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] == "Z":  # a zombie has exited; treat it as gone
        return None
    return rest[19]


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Recorded | None:
        try:
            pid_s, start, *rest = self.path.read_text().split()
            stop = signal.Signals[rest[0]] if rest else signal.SIGTERM
            return Recorded(int(pid_s), start, stop)
        except (OSError, ValueError, KeyError):
            return None

    def write(self, pid: int, stop_signal: signal.Signals = signal.SIGTERM) -> None:
        """Record the process and how to stop it, so ``down`` needs nothing but this file."""
        start = _proc_start_time(pid)
        if start is None:
            raise FatalError(f"process {pid} exited before its PID could be recorded")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {start} {stop_signal.name}\n")

    def alive(self) -> int | None:
        """The recorded PID if that very process still runs, else None."""
        rec = self.read()
        if rec is None or _proc_start_time(rec.pid) != rec.start_time:
            return None
        return rec.pid

    def running(self) -> bool:
        return self.alive() is not None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spawn(spec: ProcessSpec, pidfile: PidFile, log_path: Path) -> int:
    """Start ``spec`` detached in its own session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    user = spec.user if os.geteuid() == 0 else None
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            user=user,
            start_new_session=True,
        )
    pidfile.write(proc.pid, spec.stop_signal)
    return proc.pid


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool],
    what: str,
    log_path: Path,
) -> None:
    """Poll ``ready`` until it answers True; fail early if the process died."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if ready():
            return
        if not alive():
            raise FatalError(f"{what} exited during start-up; last log lines:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            raise FatalError(
                f"{what} not ready after {timeout:.0f}s; last log lines:\n{tail(log_path)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def http_ok(url: str) -> bool:
    """True when ``url`` answers HTTP 200 within a second; any connection failure is False."""
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def request_stop(pidfile: PidFile, stop_signal: signal.Signals | None = None) -> int | None:
    """Send the recorded process its recorded signal (or ``stop_signal``); its PID, or None
    (and the stale file removed) when it was not running."""
    pid = pidfile.alive()
    record = pidfile.read()
    if pid is None or record is None:
        pidfile.remove()
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, stop_signal or record.stop_signal)
    return pid


def await_stop(pidfile: PidFile, pid: int, timeout: float = 20.0) -> None:
    """Wait for a process asked to stop; SIGKILL its process group after ``timeout``."""
    deadline = time.monotonic() + timeout
    while pidfile.alive() is not None and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pidfile.alive() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    pidfile.remove()


def terminate(
    pidfile: PidFile, stop_signal: signal.Signals | None = None, timeout: float = 20.0
) -> bool:
    """Stop the recorded process and wait for it; True if one was running."""
    pid = request_stop(pidfile, stop_signal)
    if pid is None:
        return False
    await_stop(pidfile, pid, timeout)
    return True


def _reap(pid: int) -> None:
    # When this process started the server itself, collect its exit status so it is not a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def find_binary(name: str) -> str:
    """A server binary from PATH or, failing that, from the running virtualenv's bin/."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    raise FatalError(f"{name!r} not found; run scripts/bootstrap.sh")
