"""Gates for snapshot tests that are not about the golden questions themselves."""

from __future__ import annotations

from switchyard.dialog.golden import EvalReport
from switchyard.dialog.index import SearchIndex
from switchyard.snapshots.gate import GateResult

_REPORT = EvalReport(1, 1, 0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, ())


def passing_gate(index: SearchIndex) -> GateResult:
    return GateResult(True, f"passed at {index.info.chunks} chunks", _REPORT)


def failing_gate(index: SearchIndex) -> GateResult:
    return GateResult(False, "golden questions failed: recall@5 0.10 < 0.90", _REPORT)
