"""Time for the SIP layer: the timer values of RFC 3261 and an injectable scheduler.

Transactions schedule their timers through a ``Scheduler``: the asyncio event loop in
production, ``ManualScheduler`` in tests (time moves only when the test says so).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What transactions need of a clock; ``asyncio.AbstractEventLoop`` is one."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable: ...


@dataclass(frozen=True, slots=True)
class SipTimers:
    """RFC 3261 17.1.1.1 / table 4. T1 is also the RTT estimate for timers A, B, E, F."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:
        """Timers B, F, H, J and the 2xx retransmission limit: 64*T1."""
        return 64 * self.t1

    d_unreliable: float = 32.0


class _Handle:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A scheduler whose time moves only by ``advance``. Callbacks run in time order,
    including ones scheduled by callbacks that fall within the advanced span."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._queue: list[tuple[float, int, _Handle]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable:
        handle = _Handle(self._now + max(0.0, delay), callback)
        heapq.heappush(self._queue, (handle.when, next(self._order), handle))
        return handle

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time cannot move backwards")
        end = self._now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, handle = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self._now = when
            handle.callback()
        self._now = end

    def pending(self) -> int:
        return sum(1 for _, _, h in self._queue if not h.cancelled)
