"""Allocation under concurrent load: the uniqueness rule holds and nothing answers 5xx."""

from __future__ import annotations

import asyncio
import collections
import random

import httpx

from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account

CONCURRENT = 200


async def create_many(
    server: Server, account: Account, pairs: list[tuple[str, str]]
) -> list[httpx.Response]:
    url = f"{server.url}/v1/Account/{account.auth_id}/Masking/Session/"
    limits = httpx.Limits(max_connections=len(pairs))
    async with httpx.AsyncClient(
        auth=(account.auth_id, account.auth_token), limits=limits, timeout=60
    ) as http:
        return await asyncio.gather(
            *(http.post(url, json={"first_party": a, "second_party": b}) for a, b in pairs)
        )


def test_concurrent_creates_sharing_one_agent(
    server: Server, admin: Admin, account: Account
) -> None:
    # Fewer numbers than sessions: exactly as many succeed as there are numbers, each on a
    # different number, and the rest get Plivo's pool error (never a 5xx).
    pool = set(admin.add_numbers(account, 150))
    agent = party_number()
    responses = asyncio.run(
        create_many(server, account, [(agent, party_number()) for _ in range(CONCURRENT)])
    )

    statuses = collections.Counter(r.status_code for r in responses)
    assert statuses == {201: 150, 400: 50}, statuses
    taken = [r.json()["virtual_number"] for r in responses if r.status_code == 201]
    assert len(set(taken)) == 150 and set(taken) == pool
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {
        messages.POOL_EXHAUSTED
    }


def test_concurrent_creates_in_a_marketplace(
    server: Server, admin: Admin, account: Account
) -> None:
    # 20 agents, each with 10 customers at once: 10 numbers are enough for all of them
    # if the allocator never gives one party two sessions on the same number.
    admin.add_numbers(account, 10)
    agents = [party_number() for _ in range(20)]
    pairs = [(agent, party_number()) for agent in agents for _ in range(10)]
    random.Random(7).shuffle(pairs)
    responses = asyncio.run(create_many(server, account, pairs))

    assert {r.status_code for r in responses} == {201}
    per_agent: dict[str, set[str]] = collections.defaultdict(set)
    for response in responses:
        session = response.json()["session"]
        per_agent[session["first_party"]].add(session["virtual_number"])
    assert all(len(numbers) == 10 for numbers in per_agent.values())

    # The database agrees: no (number, party) held twice among active sessions.
    rows = admin.sql(
        "SELECT number_id, first_party, count(*) FROM sessions WHERE main_account_id = :a "
        "GROUP BY number_id, first_party HAVING count(*) > 1",
        a=account.id,
    )
    assert rows == []
