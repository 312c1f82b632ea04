"""The number an allocation takes is the one ``rank_numbers`` puts first among the free
candidates: the store sorts them in SQL, in the statement that inserts the session, and
that order must be the policy's (sticky, then the most loaded, then the lowest id)."""

from __future__ import annotations

import random
from contextlib import suppress
from datetime import timedelta

from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain.accounts import Account
from veil.domain.allocator import (
    CANDIDATES,
    Candidate,
    claim_keys,
    claimed_pins,
    pair_key,
    rank_numbers,
)
from veil.domain.errors import InvalidRequest
from veil.domain.session import holds_number_until
from veil.domain.session_params import Profile, SessionRequest, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store.sessions import FreeNumber, FreeNumberQuery, free_numbers


class _Rollback(Exception):
    pass


async def _candidates(
    ctx: ServiceContext, owner: Account, request: SessionRequest
) -> list[FreeNumber]:
    """The free candidates for ``request``, as an allocation at this moment sees them."""
    settings = request.settings
    now = ctx.clock.now()
    expiry = now + timedelta(seconds=request.session_expiry)
    query = FreeNumberQuery(
        account_id=owner.main_account_id,
        subaccount_id=None,
        country=request.anchor.country if settings.geomatch else None,
        keys=claim_keys(request.parties, claimed_pins(settings)),
        now=now,
        horizon=holds_number_until(expiry, settings.virtual_number_cooloff_period),
    )
    found: list[FreeNumber] = []
    with suppress(_Rollback):
        async with ctx.db.write() as conn:
            pair = pair_key(*request.parties)
            found = await free_numbers(conn, query, limit=CANDIDATES, pair=pair)
            raise _Rollback
    return found


def test_the_store_takes_the_number_rank_numbers_puts_first(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> tuple[int, int, int]:
        account = await accounts.create_account(ctx, name="best")
        await numbers.add_numbers(ctx, account, [pool_number() for _ in range(6)])
        customers = [party_number() for _ in range(5)]
        agents = [party_number() for _ in range(4)]
        rng = random.Random(11)
        taken = sticky = tied = 0
        for _ in range(120):
            body = {
                "first_party": rng.choice(customers),
                "second_party": rng.choice(agents),
                "session_expiry": rng.choice([120, 900, 3600]),
            }
            request = parse_create(body, Profile.CURRENT)
            found = await _candidates(ctx, account, request)
            first = next((n.id for n in found if n.sticky), None)
            candidates = {n.id: n for n in found}  # the sticky row, then its own if listed
            ranked = rank_numbers([Candidate(n.id, n.load) for n in candidates.values()], first)
            try:
                session = await sessions.create_session(ctx, account, request)
            except InvalidRequest:
                assert not ranked, "refused with a free number"
            else:
                assert ranked and session.number_id == ranked[0], (ranked, found)
                taken += 1
                if first is not None:
                    sticky += 1
                elif sum(n.load == candidates[ranked[0]].load for n in found) > 1:
                    tied += 1
            clock.advance(rng.choice([5, 60, 600]))
        return taken, sticky, tied

    taken, sticky, tied = run_scenario(service_database, scenario)
    # The orders that matter were exercised: the pair's previous number first, and a tie
    # on the load broken by the lowest id.
    assert taken >= 100 and sticky >= 20 and tied >= 10, (taken, sticky, tied)
