"""The in-memory pool replay (veil/domain/pool_replay.py) and the policies it compares.

The replay must keep the masking rule (a party never holds the same number twice at
once), refuse only when every number is really blocked, and on the traces bench/pool.py
ships, Veil's policy must never need more numbers than first-fit.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.pool_traces import TRACES, anti_first_fit, country_of, shipped
from veil.domain.allocator import overlap_load
from veil.domain.pool_replay import (
    NumberClaims,
    Policy,
    PoolReplay,
    TraceSession,
    busiest_party,
    pool_needed,
    replay,
)


def session(start: float, expiry: float, *parties: str, cooloff: float = 0) -> TraceSession:
    return TraceSession(start, expiry, parties, cooloff)


def test_a_party_gets_a_different_number_for_each_live_session() -> None:
    got = replay(
        [session(0, 100, "a", "b"), session(1, 100, "a", "c"), session(2, 100, "d", "e")], 2
    )
    assert got[0] != got[1]
    assert got[2] is not None


def test_a_number_is_free_again_after_expiry_plus_cooloff() -> None:
    pool = PoolReplay(1)
    assert pool.offer(session(0, 60, "a", "b", cooloff=30)) == 0
    assert pool.offer(session(89, 60, "a", "c")) is None  # still cooling off
    assert pool.offer(session(90, 60, "a", "c")) == 0  # dead at its end


def test_refuses_when_both_parties_block_every_number() -> None:
    pool = PoolReplay(2, Policy.FIRST_FIT)
    assert pool.offer(session(0, 100, "a", "x")) == 0
    assert pool.offer(session(0, 100, "b", "y")) == 0
    assert pool.offer(session(0, 100, "b", "z")) == 1
    assert pool.offer(session(1, 100, "a", "b")) is None


def test_a_pair_gets_its_previous_number_back_when_free() -> None:
    pool = PoolReplay(5)
    first = pool.offer(session(0, 60, "a", "b"))
    pool.offer(session(1, 1000, "c", "d"))  # makes another number heavier
    assert pool.offer(session(100, 60, "b", "a")) == first


def test_veil_stacks_the_new_session_where_claims_already_sit() -> None:
    # v holds number 1 (0 was taken by t's other session, which then ends); a new party
    # u takes number 1 too under Veil's policy (it is used for u's whole session, number
    # 0 not at all), so u and v can still talk with 2 numbers; first-fit needs a third.
    trace = [
        session(0, 10, "t", "h"),
        session(1, 1000, "v", "t"),
        session(20, 1000, "u", "f"),
        session(21, 1000, "u", "v"),
    ]
    assert replay(trace, 2, Policy.VEIL) == [0, 1, 1, 0]
    assert replay(trace, 2, Policy.FIRST_FIT) == [0, 1, 0, None]


def test_busiest_party_counts_cooloffs_and_ends_before_starts() -> None:
    assert busiest_party([]) == 0
    assert busiest_party([session(0, 60, "a", "b"), session(60, 60, "a", "c")]) == 1
    assert busiest_party([session(0, 60, "a", "b", cooloff=1), session(60, 60, "a", "c")]) == 2


@pytest.mark.parametrize("policy", list(Policy))
def test_first_fits_worst_case(policy: Policy) -> None:
    trace = anti_first_fit(n=6, rounds=1)
    assert busiest_party(trace) == 6
    needed = pool_needed(trace, policy)
    assert 6 <= needed <= 11
    if policy is Policy.FIRST_FIT:
        assert needed == 11  # 2N - 1
    if policy is Policy.VEIL:
        assert needed == 6


PARTIES = [f"p{i}" for i in range(6)]
traces = st.lists(
    st.tuples(
        st.integers(0, 300),
        st.integers(60, 200),
        st.sampled_from(PARTIES),
        st.sampled_from(PARTIES),
        st.sampled_from([0, 30]),
    ).filter(lambda t: t[2] != t[3]),
    max_size=40,
).map(lambda ts: [session(s, e, a, b, cooloff=c) for s, e, a, b, c in ts])


@settings(max_examples=200, deadline=None)
@given(traces, st.integers(1, 6), st.sampled_from(list(Policy)))
def test_the_rule_holds_and_refusals_are_real(
    trace: list[TraceSession], size: int, policy: Policy
) -> None:
    ordered = sorted(trace, key=lambda s: s.start)
    got = replay(trace, size, policy)
    for i, (s, number) in enumerate(zip(ordered, got, strict=True)):
        live = [
            (o, n)
            for o, n in zip(ordered[:i], got[:i], strict=True)
            if n is not None and o.busy_until > s.start and set(o.parties) & set(s.parties)
        ]
        if number is None:
            assert {n for _, n in live} == set(range(size))  # every number blocked
        else:
            assert 0 <= number < size
            assert number not in {n for _, n in live}


@settings(max_examples=100, deadline=None)
@given(traces, st.sampled_from(list(Policy)))
def test_pool_needed_is_between_n_and_2n_minus_1(trace: list[TraceSession], policy: Policy) -> None:
    n = busiest_party(trace)
    needed = pool_needed(trace, policy)
    assert n <= needed <= max(2 * n - 1, 0)
    assert None not in replay(trace, needed, policy)


@pytest.mark.parametrize("name", list(TRACES))
def test_veil_never_needs_more_than_first_fit_on_the_shipped_traces(name: str) -> None:
    trace = shipped(name)
    for country in trace.countries:
        share = [s for s in trace.sessions if country_of(s) == country]
        veil = pool_needed(share, Policy.VEIL)
        first_fit = pool_needed(share, Policy.FIRST_FIT)
        assert busiest_party(share) <= veil <= first_fit
        if name == "anti-first-fit":
            assert veil < first_fit


# Claims and the moments of later allocations, in seconds (fractions included: the
# store compares exact timestamps and sums whole seconds).
moments = st.floats(0, 10_000, allow_nan=False).map(lambda t: round(t, 3))


@given(
    st.lists(st.tuples(st.booleans(), moments, moments), max_size=60),
    st.integers(1, 8),
)
def test_number_claims_load_is_overlap_load(
    steps: list[tuple[bool, float, float]], most: int
) -> None:
    # Interleaved claims and load questions, time only moving forward as in a replay;
    # ``most`` small, so that the claims that end last are the ones counted.
    claims, ends, now = NumberClaims(), list[float](), 0.0
    for is_claim, a, b in steps:
        if is_claim:
            end = now + a
            claims.add(end)
            ends.append(end)
            continue
        now += a / 100
        horizon = now + b
        live = [math.floor(end) for end in ends if end > now]
        expected = overlap_load(live, math.floor(now), math.floor(horizon), most=most)
        assert claims.load(now, horizon, most=most) == expected
