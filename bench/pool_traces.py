"""The session traces bench/pool.py replays: seeded, so every run sees the same traffic.

A trace is the sessions a business creates over some hours: when each starts, how long it
lives (its session_expiry, at least Plivo's 60 s) and its parties, as real E.164
numbers so the same trace can drive Veil's API rules. Each models one shape of traffic:

- marketplace: 200 agents and a few thousand customers (some come back), Poisson
  arrivals, exponential durations;
- ride-hailing: drivers with a ride and at most one queued, riders with one ride at a
  time, short sessions and heavy churn;
- hub: a few parties (stores, dispatch desks) with very many sessions each;
- anti-first-fit: an order built so that first-fit needs 2N - 1 numbers;
- two-countries: a marketplace in the US and in India, geomatched (each country's
  sessions need that country's numbers);
- cool-off: agents and customers who each handle up to 8 sessions, kept near capacity,
  with a 10-minute cool-off that keeps every ended session's number blocked.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from veil.domain.pool_replay import TraceSession

MIN_EXPIRY = 60  # Plivo's smallest session_expiry
MAX_EXPIRY = 86400

# Party numbers by country: valid, and never a pool number (those are +1415 / +9190).
_PARTY_PREFIX = {"US": ("+1646", 7), "IN": ("+9198", 8)}
COUNTRY_BY_PREFIX = {"+1": "US", "+91": "IN"}


@dataclass(frozen=True)
class Trace:
    name: str
    sessions: list[TraceSession]
    geomatch: bool = False

    @property
    def countries(self) -> list[str]:
        return sorted({country_of(s) for s in self.sessions})


def country_of(session: TraceSession) -> str:
    """The anchor (first party) country, which geomatch follows."""
    first = session.parties[0]
    return COUNTRY_BY_PREFIX["+91" if first.startswith("+91") else "+1"]


class _Phones:
    """Stable E.164 numbers for named parties of one country."""

    def __init__(self, country: str = "US") -> None:
        self._prefix, self._width = _PARTY_PREFIX[country]
        self._numbers: dict[str, str] = {}
        self._next = itertools.count(2_000_000)

    def __call__(self, name: str) -> str:
        if name not in self._numbers:
            self._numbers[name] = self._prefix + str(next(self._next)).rjust(self._width, "0")
        return self._numbers[name]


def _duration(rng: random.Random, mean_seconds: float) -> int:
    return min(MAX_EXPIRY, max(MIN_EXPIRY, round(rng.expovariate(1 / mean_seconds))))


def _arrivals(rng: random.Random, per_minute: float, hours: float) -> Iterator[int]:
    """Poisson arrival times in whole seconds."""
    t = 0.0
    while True:
        t += rng.expovariate(per_minute / 60)
        if t >= hours * 3600:
            return
        yield int(t)


def marketplace(
    seed: int = 1,
    country: str = "US",
    agents: int = 200,
    customers: int = 1500,
    per_minute: float = 10,
    mean_minutes: float = 90,
    hours: float = 8,
) -> list[TraceSession]:
    """Customers pick any agent; a few customers are much more active than most."""
    rng = random.Random(seed)
    phone = _Phones(country)
    activity = [1 / (i + 1) ** 0.3 for i in range(customers)]
    sessions = []
    for start in _arrivals(rng, per_minute, hours):
        agent = phone(f"agent{rng.randrange(agents)}")
        customer = phone(f"customer{rng.choices(range(customers), activity)[0]}")
        sessions.append(TraceSession(start, _duration(rng, mean_minutes * 60), (agent, customer)))
    return sessions


def capacity_bound(
    seed: int,
    sides: tuple[int, int],
    capacities: tuple[int, int],
    mean_minutes: float,
    hours: float,
    load: float = 0.95,
    cooloff: int = 0,
) -> list[TraceSession]:
    """Two sides (agents and customers, drivers and riders) where each party has at most
    ``capacities`` sessions (counting cool-offs); arrivals keep the first side near full."""
    rng = random.Random(seed)
    phone = _Phones()
    ends: list[dict[int, list[int]]] = [{}, {}]
    per_minute = load * sides[0] * capacities[0] / mean_minutes
    sessions = []
    for start in _arrivals(rng, per_minute, hours):
        picked = [_with_room(rng, ends[i], sides[i], capacities[i], start) for i in (0, 1)]
        if None in picked:
            continue  # everybody busy: the request is dropped before it needs a number
        expiry = _duration(rng, mean_minutes * 60)
        for side, party in enumerate(picked):
            assert party is not None
            ends[side].setdefault(party, []).append(start + expiry + cooloff)
        first, second = (phone(f"{side}-{p}") for side, p in enumerate(picked))
        sessions.append(TraceSession(start, expiry, (first, second), cooloff))
    return sessions


def _with_room(
    rng: random.Random, ends: dict[int, list[int]], count: int, capacity: int, now: int
) -> int | None:
    for _ in range(50):
        party = rng.randrange(count)
        live = [end for end in ends.get(party, []) if end > now]
        ends[party] = live
        if len(live) < capacity:
            return party
    return None


def anti_first_fit(n: int = 10, rounds: int = 3) -> list[TraceSession]:
    """First-fit's worst case, N = ``n``: party v gets n - 1 sessions with parties that
    each already hold numbers 1 .. n-1 (short helper sessions), so first-fit gives v the
    numbers n .. 2n-2; then party u gets n - 1 sessions with new parties (first-fit:
    1 .. n-1) and finally a session with v, which needs a (2n-1)th number."""
    phone = _Phones()
    fresh = itertools.count()
    sessions = []
    t = 0
    for r in range(rounds):
        u, v = phone(f"u{r}"), phone(f"v{r}")
        for k in range(n - 1):
            tk = phone(f"t{r}-{k}")
            for _ in range(n - 1):
                t += 1
                sessions.append(TraceSession(t, 100, (tk, phone(f"h{next(fresh)}"))))
            t += 1
            sessions.append(TraceSession(t, MAX_EXPIRY, (v, tk)))
            t += 200  # the helpers end
        for _ in range(n - 1):
            t += 1
            sessions.append(TraceSession(t, MAX_EXPIRY, (u, phone(f"f{next(fresh)}"))))
        t += 1
        sessions.append(TraceSession(t, MAX_EXPIRY, (u, v)))
    return sessions


def _ride_hailing(seed: int) -> list[TraceSession]:
    return capacity_bound(seed, sides=(300, 3000), capacities=(2, 1), mean_minutes=15, hours=4)


def _hub(seed: int) -> list[TraceSession]:
    return capacity_bound(seed, sides=(6, 400), capacities=(60, 3), mean_minutes=30, hours=4)


def _two_countries(seed: int) -> list[TraceSession]:
    us = marketplace(seed=seed, country="US", agents=100, per_minute=6)
    india = marketplace(seed=seed + 1, country="IN", agents=100, per_minute=6)
    return sorted(us + india, key=lambda s: s.start)


def _cooloff(seed: int) -> list[TraceSession]:
    return capacity_bound(
        seed, sides=(100, 100), capacities=(8, 8), mean_minutes=60, hours=4, cooloff=600
    )


# Each trace from its seed; SEEDS are the ones the table in docs/benchmarks.md uses.
TRACES: dict[str, Callable[[int], Trace]] = {
    "marketplace": lambda seed: Trace("marketplace", marketplace(seed)),
    "ride-hailing": lambda seed: Trace("ride-hailing", _ride_hailing(seed)),
    "hub": lambda seed: Trace("hub", _hub(seed)),
    "anti-first-fit": lambda seed: Trace("anti-first-fit", anti_first_fit()),  # no chance in it
    "two-countries": lambda seed: Trace("two-countries", _two_countries(seed), geomatch=True),
    "cool-off": lambda seed: Trace("cool-off", _cooloff(seed)),
}
SEEDS = {
    "marketplace": 1,
    "ride-hailing": 3,
    "hub": 4,
    "anti-first-fit": 0,
    "two-countries": 5,
    "cool-off": 7,
}


def shipped(name: str) -> Trace:
    """The trace as the benchmark table shows it."""
    return TRACES[name](SEEDS[name])
