"""Time, injected: the loop and the saga never read the system clock or sleep directly."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware current time."""
        ...

    def sleep(self, seconds: float) -> None: ...
