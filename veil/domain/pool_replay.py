"""Replay session traffic against a pool of a given size, in memory.

The same rule (veil.domain.allocator: a party holds at most one live claim per number,
live until expiry plus cool-off) and the same choice as the store-backed allocator
(sticky number, then ``rank_numbers`` over the first ``CANDIDATES`` free numbers), so the
pool that some traffic needs can be found without a database: the operator report
replays the last 7 days this way, and bench/pool.py checks that this replay and the real
allocator give every session the same number. First-fit and random choice are the
baselines the benchmark compares with.

Times are seconds on any common origin. PIN claims are not replayed: they only constrain
a number when two sessions choose the same PIN, which generated PINs avoid.
"""

from __future__ import annotations

import bisect
import enum
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from veil.domain.allocator import (
    CANDIDATES,
    LOAD_CLAIMS,
    Candidate,
    pair_key,
    party_key,
    rank_numbers,
)


@dataclass(frozen=True, slots=True)
class TraceSession:
    """A session as the allocator sees it: when it starts and how long it holds a number."""

    start: float
    expiry: float  # seconds from start to the session's expiry
    parties: tuple[str, ...]  # one or two real numbers
    cooloff: float = 0.0

    @property
    def busy_until(self) -> float:
        return self.start + self.expiry + self.cooloff


class NumberClaims:
    """The ends of the live claims on one number, in order, from which ``overlap_load``
    is read without walking them one by one in Python: summing every candidate's claims
    that way was nine tenths of a replay, and the pool report replays a week of traffic
    for each pool size it tries."""

    __slots__ = ("_ends", "_floors")

    def __init__(self) -> None:
        self._ends: list[float] = []  # sorted
        self._floors: list[int] = []  # math.floor of each end, in the same order

    def add(self, end: float) -> None:
        at = bisect.bisect_right(self._ends, end)
        self._ends.insert(at, end)
        self._floors.insert(at, math.floor(end))

    def load(self, now: float, horizon: float, *, most: int = LOAD_CLAIMS) -> int:
        """``overlap_load`` of the claims live at ``now`` (``horizon >= now``), in whole
        seconds as the store sums it; the dead ones are dropped."""
        dead = bisect.bisect_right(self._ends, now)
        if dead:
            del self._ends[:dead], self._floors[:dead]
        whole_now, whole_horizon = math.floor(now), math.floor(horizon)
        live = len(self._ends)
        counted = max(0, live - most)  # the first counted claim: the ``most`` that end last
        # Claims ending before the horizon count until their end, the rest until the
        # horizon (an end < an integer exactly when its floor is).
        before = max(bisect.bisect_left(self._ends, whole_horizon), counted)
        return (
            sum(self._floors[counted:before])
            + (live - before) * whole_horizon
            - (live - counted) * whole_now
        )


class Policy(enum.StrEnum):
    VEIL = "veil"  # what veil.service.sessions does
    FIRST_FIT = "first-fit"  # the lowest free number
    RANDOM = "random"  # any free number, uniformly


class PoolReplay:
    """A pool of ``size`` numbers (ids 0 .. size-1, in the store's id order)."""

    def __init__(self, size: int, policy: Policy = Policy.VEIL, seed: int = 0) -> None:
        self.size = size
        self.policy = policy
        self._random = random.Random(seed)
        self._held: defaultdict[str, dict[int, float]] = defaultdict(dict)  # key: number -> until
        self._claims = [NumberClaims() for _ in range(size)]
        self._sticky: dict[str, int] = {}  # pair -> the number of its latest session

    def offer(self, session: TraceSession) -> int | None:
        """The number the session gets, or None when the pool is exhausted for it."""
        now = session.start
        keys = [party_key(p) for p in session.parties if p]
        busy: set[int] = set()
        for key in keys:
            busy.update(self._live(key, now))
        pair = pair_key(*session.parties) if len(session.parties) == 2 else ""
        sticky = self._sticky.get(pair) if pair else None
        number = self._choose(busy, sticky, now, session.busy_until)
        if number is None:
            return None
        for key in keys:
            self._held[key][number] = session.busy_until
            self._claims[number].add(session.busy_until)
        if pair:
            self._sticky[pair] = number
        return number

    def _live(self, key: str, now: float) -> list[int]:
        claims = self._held.get(key)
        if not claims:
            return []
        dead = [n for n, until in claims.items() if until <= now]
        for n in dead:
            del claims[n]
        return list(claims)

    def _choose(self, busy: set[int], sticky: int | None, now: float, horizon: float) -> int | None:
        if self.policy is Policy.RANDOM:
            free = [n for n in range(self.size) if n not in busy]
            return self._random.choice(free) if free else None
        first = _first_free(self.size, busy, 1 if self.policy is Policy.FIRST_FIT else CANDIDATES)
        if self.policy is Policy.FIRST_FIT:
            return first[0] if first else None
        if sticky is not None and sticky < self.size and sticky not in busy:
            first.append(sticky)
        candidates = [Candidate(n, self._claims[n].load(now, horizon)) for n in set(first)]
        ranked = rank_numbers(candidates, sticky)
        return ranked[0] if ranked else None


def _first_free(size: int, busy: set[int], count: int) -> list[int]:
    found: list[int] = []
    for n in range(size):
        if n not in busy:
            found.append(n)
            if len(found) == count:
                break
    return found


def replay(
    sessions: Iterable[TraceSession], size: int, policy: Policy = Policy.VEIL, seed: int = 0
) -> list[int | None]:
    """Each session's number (None: refused), offering the sessions in start order."""
    pool = PoolReplay(size, policy, seed)
    return [pool.offer(s) for s in sorted(sessions, key=lambda s: s.start)]


def busiest_party(sessions: Iterable[TraceSession]) -> int:
    """N: the most numbers one party holds at once (live sessions and cool-offs)."""
    events: list[tuple[float, int, str]] = []
    for s in sessions:
        for party in s.parties:
            if party:
                events.append((s.start, 1, party))
                events.append((s.busy_until, -1, party))
    events.sort()  # at the same instant, ends (-1) before starts: a claim is dead at its end
    held: defaultdict[str, int] = defaultdict(int)
    most = 0
    for _, step, party in events:
        held[party] += step
        most = max(most, held[party])
    return most


def pool_needed(
    sessions: Sequence[TraceSession], policy: Policy = Policy.VEIL, seed: int = 0
) -> int:
    """The smallest pool that serves every session. No pool smaller than N can; any
    choice of a free number serves everything with 2N - 1 (a session's two parties hold
    at most 2N - 2 other numbers), so the search is bounded."""
    most = busiest_party(sessions)
    ordered = sorted(sessions, key=lambda s: s.start)
    for size in range(most, 2 * most):
        pool = PoolReplay(size, policy, seed)
        if all(pool.offer(s) is not None for s in ordered):  # stops at the first refusal
            return size
    return max(2 * most - 1, 0)
