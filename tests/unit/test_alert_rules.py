"""The alert rules shipped in deploy/prometheus pass promtool's checks and their unit tests
(promtool comes with the prometheus package that scripts/bootstrap.sh installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: run scripts/bootstrap.sh")
    return found


def test_the_rules_are_valid(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", *sorted(str(p) for p in RULES.glob("*-rules.yml"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_fire_when_their_tests_say(promtool: str) -> None:
    tests = sorted(str(p.name) for p in RULES.glob("*.test.yml"))
    assert tests
    done = subprocess.run(
        [promtool, "test", "rules", *tests],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES,
    )
    assert done.returncode == 0, done.stdout + done.stderr
