"""Property test of the allocation rule over random create / delete / extend / wait runs.

After every step, checked against the stored sessions:
- uniqueness: two sessions that still hold a number (before expiry + cool-off) never share
  a party, nor a PIN when both use PIN authentication, so (caller, number) and
  (PIN, number) each identify one session;
- completeness: "pool exhausted" only when every number really has a conflict;
- stickiness: a pair gets its previous number back whenever that number is free.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.servers import sqlite_database
from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.session_params import Profile, parse_create, parse_update
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store.tables import sessions as sessions_table

PARTIES = 5
PINS = ["1111", "2222", "3333"]
SESSION_EXPIRY = 120

create = st.tuples(
    st.just("create"),
    st.integers(0, PARTIES - 1),
    st.integers(0, PARTIES - 1),
    st.sampled_from([0, 60]),  # cool-off
    st.one_of(st.none(), st.tuples(st.sampled_from(PINS), st.sampled_from(PINS))),
)
delete = st.tuples(st.just("delete"), st.integers(0, 30))
extend = st.tuples(st.just("extend"), st.integers(0, 30), st.sampled_from([60, 300]))
wait = st.tuples(st.just("wait"), st.sampled_from([1, 30, 61, 200]))
steps = st.lists(st.one_of(create, create, delete, extend, wait), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def property_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("property")
    with sqlite_database(directory) as url:
        yield url


@dataclass(frozen=True)
class Held:
    number: str
    parties: frozenset[str]
    pins: frozenset[str]


def conflicts(held: Held, parties: set[str], pins: set[str]) -> bool:
    return bool(held.parties & parties) or bool(held.pins & pins)


async def holding(ctx: ServiceContext, account_id: int, now: datetime) -> list[Held]:
    """Sessions that still hold their number at ``now``, from the table itself."""
    async with ctx.db.read() as conn:
        rows = (
            await conn.execute(
                select(sessions_table).where(sessions_table.c.main_account_id == account_id)
            )
        ).all()
    held = []
    for row in rows:
        busy_until = row.expiry_time + timedelta(seconds=row.virtual_number_cooloff_period)
        if now < busy_until:
            pins = (
                {row.first_party_pin, row.second_party_pin}
                if row.is_pin_authentication_required
                else set()
            )
            held.append(
                Held(
                    row.virtual_number,
                    frozenset({row.first_party, row.second_party}),
                    frozenset(pins),
                )
            )
    return held


def check_unique(held: list[Held]) -> None:
    for i, one in enumerate(held):
        for other in held[i + 1 :]:
            if one.number == other.number:
                assert not (one.parties & other.parties), (one, other)
                assert not (one.pins & other.pins), (one, other)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps, pool_size=st.integers(1, 3))
def test_allocation_rule(
    property_database: str, plan: list[tuple[Any, ...]], pool_size: int
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account = await accounts.create_account(ctx, name="prop")
        pool = [pool_number() for _ in range(pool_size)]
        await numbers.add_numbers(ctx, account, pool)
        people = [party_number() for _ in range(PARTIES)]
        created: list[str] = []
        history: dict[frozenset[str], str] = {}  # pair -> number of its latest session

        for step in plan:
            kind = step[0]
            if kind == "create":
                _, a, b, cooloff, pins = step
                if a == b or (pins is not None and pins[0] == pins[1]):
                    continue
                body: dict[str, Any] = {
                    "first_party": people[a],
                    "second_party": people[b],
                    "session_expiry": SESSION_EXPIRY,
                    "virtual_number_cooloff_period": cooloff,
                }
                if pins is not None:
                    body.update(
                        is_pin_authentication_required=True,
                        pin_prompt_play="https://example.com/pin.wav",
                        first_party_pin=pins[0],
                        second_party_pin=pins[1],
                    )
                want_parties = {people[a], people[b]}
                want_pins = set(pins) if pins is not None else set()
                before = await holding(ctx, account.id, clock.now())
                free = [
                    n
                    for n in pool
                    if not any(
                        h.number == n and conflicts(h, want_parties, want_pins) for h in before
                    )
                ]
                pair = frozenset(want_parties)
                try:
                    session = await sessions.create_session(
                        ctx, account, parse_create(body, Profile.CURRENT)
                    )
                except InvalidRequest as exc:
                    assert exc.message == messages.POOL_EXHAUSTED
                    assert free == [], "pool exhausted although a number was free"
                    continue
                assert session.virtual_number in free
                if history.get(pair) in free:
                    assert session.virtual_number == history[pair], "not sticky"
                history[pair] = session.virtual_number
                created.append(session.uuid)
            elif kind == "delete" and created:
                uuid = created[step[1] % len(created)]
                try:
                    await sessions.expire_session(ctx, account, uuid)
                except InvalidRequest as exc:
                    assert exc.message == messages.ALREADY_EXPIRED
            elif kind == "extend" and created:
                uuid = created[step[1] % len(created)]
                try:
                    await sessions.update_session(
                        ctx,
                        account,
                        uuid,
                        parse_update({"session_expiry": step[2]}, Profile.CURRENT),
                    )
                except InvalidRequest as exc:
                    assert exc.message == messages.ALREADY_EXPIRED
            elif kind == "wait":
                clock.advance(step[1])
            check_unique(await holding(ctx, account.id, clock.now()))

    run_scenario(property_database, scenario)
