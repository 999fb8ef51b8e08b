"""Revisions: a hybrid logical clock shared by every write of a process.

Every write, update, delete (tombstone) and expiry purge stamps a revision: wall-clock
nanoseconds, forced strictly increasing inside the process, and never below a revision the
process has already *seen* from another process (the HLC receive rule), so a process whose
clock lags catches up as soon as it reads a newer write.

Readers catch up by asking for revisions above ``watermark - skew window``. The window
covers both the clock skew between machines and the time between stamping a revision and
Chroma committing it. A writer whose clock runs more than the window behind the reader's
newest seen revision can be missed until the partition is reloaded: keep machines'
clocks within the window (NTP keeps them within milliseconds; the default is 2 s).

``clock_offset_s`` (or ``$MEM_ADAPTERS_CLOCK_OFFSET_S``) shifts this process's clock; it
exists so tests can simulate a skewed machine without touching the system clock.
"""

from __future__ import annotations

import os
import time

OFFSET_ENV = "MEM_ADAPTERS_CLOCK_OFFSET_S"
SKEW_ENV = "MEM_ADAPTERS_CLOCK_SKEW_S"
DEFAULT_SKEW_S = 2.0


class RevisionClock:
    """Monotonic revisions (int nanoseconds) for one process.

    Args:
        offset_s: Seconds added to the wall clock (tests simulate skew with it).
        skew_s: The documented skew window readers look back by.

    Example:
        >>> clock = RevisionClock()
        >>> a, b = clock.next(), clock.next()
        >>> b > a
        True
    """

    def __init__(self, offset_s: float | None = None, skew_s: float | None = None) -> None:
        if offset_s is None:
            offset_s = float(os.environ.get(OFFSET_ENV) or 0.0)
        if skew_s is None:
            skew_s = float(os.environ.get(SKEW_ENV) or DEFAULT_SKEW_S)
        self.offset_ns = int(offset_s * 1e9)
        self.skew_ns = int(skew_s * 1e9)
        self._last = 0

    def now(self) -> int:
        """This process's (offset) wall clock in nanoseconds, without reserving a revision."""
        return time.time_ns() + self.offset_ns

    def next(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive revisions; returns the first."""
        base = max(self.now(), self._last + 1)
        self._last = base + n - 1
        return base

    def observe(self, rev: int) -> None:
        """A revision written by someone else was read: never stamp below it."""
        if rev > self._last:
            self._last = rev

    def since(self, watermark: int) -> int:
        """The revision a catch-up reads above, for a partition at ``watermark``."""
        return max(0, watermark - self.skew_ns)


class SeqClock:
    """Write order (``seq``): wall-clock nanoseconds, strictly increasing inside the process.

    Within a process ``seq`` is exactly write order; across processes it is write-time
    order (ties broken by id). A re-sent turn keeps its first ``seq``.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive sequence numbers; returns the first."""
        base = max(time.time_ns(), self._last + 1)
        self._last = base + n - 1
        return base
