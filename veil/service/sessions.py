"""Masking sessions: create (with number allocation), read, list, update, expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.allocator import (
    CANDIDATES,
    Candidate,
    claim_keys,
    claimed_pins,
    pair_key,
    party_key,
    rank_numbers,
)
from veil.domain.errors import InvalidRequest, NotFound
from veil.domain.ids import is_uuid, new_uuid
from veil.domain.list_filters import SessionFilter
from veil.domain.pins import pick_pin_pair
from veil.domain.session import Session, Status, holds_number_until, session_duration
from veil.domain.session_params import (
    SETTINGS_FIELDS,
    SessionRequest,
    SessionSettings,
    SessionUpdate,
    needs_media,
)
from veil.service import accounts
from veil.service.context import ServiceContext
from veil.store import claims, interactions
from veil.store import sessions as repo
from veil.store.db import Conn

# Allocation retries when a concurrent transaction took a claim first (PostgreSQL only:
# SQLite writers are serial). Each retry sees the winner's claims and avoids them.
MAX_ALLOCATION_ATTEMPTS = 8


class _ClaimLost(Exception):
    """A concurrent session claimed one of our keys first; roll back and retry."""


def _lock_key(main_account_id: int, key: str) -> str:
    return f"{main_account_id}/{key}"


async def create_session(
    ctx: ServiceContext, principal: Account, request: SessionRequest
) -> Session:
    """Allocate a virtual number and store the session; ``InvalidRequest`` with Plivo's
    "Number pool exhausted or not available." when no number satisfies the rules."""
    if not ctx.media.available and needs_media(request.settings):
        raise InvalidRequest(messages.MEDIA_OFF)
    owner = await accounts.acting_as(ctx, principal, request.subaccount, enabled_only=True)
    for _ in range(MAX_ALLOCATION_ATTEMPTS):
        try:
            async with ctx.db.write() as conn:
                session = await _allocate(ctx, conn, owner, request)
        except _ClaimLost:
            continue
        if session.settings.initiate_call_to_first_party:
            for originate in ctx.originate:  # after the commit: the call reads it
                originate(session)
        return session
    raise InvalidRequest(messages.POOL_EXHAUSTED)


async def _allocate(
    ctx: ServiceContext, conn: Conn, owner: Account, request: SessionRequest
) -> Session:
    """One allocation attempt, inside a write transaction."""
    settings = request.settings
    parties = request.parties
    # PINs the client chose constrain the number like the parties do; PINs Veil
    # generates are picked afterwards, among those free on the chosen number.
    generate = settings.is_pin_authentication_required and settings.generate_pin
    keys = claim_keys(parties, [] if generate else claimed_pins(settings))
    # Sessions sharing a party compete for the same numbers: serialise them.
    main_id = owner.main_account_id
    # With the planner settings the allocation's statements need (veil.store.sessions).
    locks = [_lock_key(main_id, party_key(p)) for p in parties]
    await ctx.db.lock_keys(conn, locks, planner=repo.ALLOCATION_PLANNER)
    now = ctx.clock.now()
    expiry = now + timedelta(seconds=request.session_expiry)
    # Until when this session would hold the number: what a candidate's load counts.
    busy_until = holds_number_until(expiry, settings.virtual_number_cooloff_period)
    pool = repo.FreeNumberQuery(
        account_id=main_id,
        subaccount_id=owner.id if owner.is_subaccount else None,
        country=request.anchor.country if settings.geomatch else None,
        keys=keys,
        now=now,
        horizon=busy_until,
    )
    pair = pair_key(*parties) if len(parties) == 2 else ""
    if not generate:
        # The common case: the store ranks the candidates (rank_numbers' order) in the
        # statement that inserts the session and its claims.
        placed = await repo.insert_on_best_number(
            conn,
            pool,
            _session_values(request, owner, settings, now, expiry),
            limit=CANDIDATES,
            pair=pair,
            busy_until=busy_until,
        )
        if placed is None:
            raise InvalidRequest(messages.POOL_EXHAUSTED)
        if not placed.claimed:
            raise _ClaimLost
        return placed.session

    # Veil generates the PINs: among the PINs free on the number, so the candidates are
    # ranked here and tried in turn.
    found = await repo.free_numbers(conn, pool, limit=CANDIDATES, pair=pair)
    candidates = {n.id: n for n in found}
    sticky = next((n.id for n in found if n.sticky), None)
    for number_id in rank_numbers([Candidate(n.id, n.load) for n in candidates.values()], sticky):
        length = settings.generate_pin_length
        used = await claims.live_pins(conn, number_id=number_id, length=length, now=now)
        pins = pick_pin_pair(length, used)
        if pins is None:
            continue  # every PIN of that length is taken on this number
        chosen = replace(settings, first_party_pin=pins[0], second_party_pin=pins[1])
        values = _session_values(request, owner, chosen, now, expiry)
        values |= {"number_id": number_id, "virtual_number": candidates[number_id].e164}
        session = await repo.insert_claiming(
            conn,
            values,
            keys=claim_keys(parties, claimed_pins(chosen)),
            busy_until=busy_until,
            now=now,
        )
        if session is None:
            raise _ClaimLost
        return session
    raise InvalidRequest(messages.POOL_EXHAUSTED)


def _session_values(
    request: SessionRequest,
    owner: Account,
    settings: SessionSettings,
    now: datetime,
    expiry: datetime,
) -> dict[str, object]:
    """The columns of a new session, but its number."""
    first = request.first_party.value if request.first_party else ""
    second = request.second_party.value if request.second_party else ""
    return {
        "uuid": new_uuid(),
        "account_id": owner.id,
        "main_account_id": owner.main_account_id,
        "subaccount": owner.auth_id if owner.is_subaccount else "",
        "first_party": first,
        "second_party": second,
        "pair_key": pair_key(first, second),
        "status": Status.ACTIVE.value,
        "created_time": now,
        "modified_time": now,
        "expiry_time": expiry,
        "duration": session_duration(now, expiry),
        **_settings_values(settings),
    }


def _settings_values(settings: SessionSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in SETTINGS_FIELDS}


def _visible(principal: Account, session: Session) -> bool:
    if principal.is_subaccount:
        return session.account_id == principal.id
    return session.main_account_id == principal.id


async def get_session(ctx: ServiceContext, principal: Account, uuid: str) -> Session:
    async with ctx.db.read() as conn:
        session = await _find(conn, principal, uuid)
        return (await interactions.attach(conn, [session]))[0]


async def _find(conn: Conn, principal: Account, uuid: str) -> Session:
    """The principal's session ``uuid``; ``NotFound`` for anything else, including another
    account's session (never its data)."""
    session = await repo.get_session(conn, uuid) if is_uuid(uuid) else None
    if session is None or not _visible(principal, session):
        raise NotFound(messages.SESSION_NOT_FOUND)
    return session


async def list_sessions(
    ctx: ServiceContext, principal: Account, filters: SessionFilter
) -> tuple[list[Session], int]:
    """The principal's sessions; a main account sees its subaccounts' too, or one
    subaccount's with the ``subaccount`` filter."""
    named = await accounts.acting_as(ctx, principal, filters.subaccount)
    account_id = named.id if named.is_subaccount else None
    async with ctx.db.read() as conn:
        found, total = await repo.list_sessions(
            conn,
            main_account_id=principal.main_account_id,
            account_id=account_id,
            filters=filters,
            now=ctx.clock.now(),
        )
        return await interactions.attach(conn, found), total


async def update_session(
    ctx: ServiceContext, principal: Account, uuid: str, update: SessionUpdate
) -> Session:
    async with ctx.db.write() as conn:
        session = await _find(conn, principal, uuid)
        now = ctx.clock.now()
        if session.status_at(now) is Status.EXPIRED:
            raise InvalidRequest(messages.ALREADY_EXPIRED)
        for name, value in update.fixed.items():
            if name == "subaccount":
                # Naming the owner itself is what create accepted, not a change.
                current = session.subaccount or principal.auth_id
            else:
                current = getattr(session.settings, name)
            if value != current:
                raise InvalidRequest(messages.immutable(name))

        values: dict[str, object] = dict(update.settings)
        if not ctx.media.available and needs_media(values):
            raise InvalidRequest(messages.MEDIA_OFF)
        for name, other in (("first_party", "second_party"), ("second_party", "first_party")):
            new = getattr(update, name)
            old = getattr(session, name)
            if new is None or new.value == old:
                continue
            if not session.settings.create_session_with_single_party:
                raise InvalidRequest(messages.immutable(name))
            if new.value == values.get(other, getattr(session, other)):
                raise InvalidRequest(messages.SAME_PARTY)
            await ctx.db.lock_keys(conn, [_lock_key(session.main_account_id, party_key(new.value))])
            if old:
                await claims.release(conn, session.id, party_key(old))
            key = party_key(new.value)
            if session.number_id is None or not await claims.claim(
                conn,
                number_id=session.number_id,
                keys=[key],
                session_id=session.id,
                busy_until=session.busy_until(),
                now=now,
            ):
                raise InvalidRequest(messages.party_busy(name))
            values[name] = new.value
        if "first_party" in values or "second_party" in values:
            values["pair_key"] = pair_key(
                str(values.get("first_party", session.first_party)),
                str(values.get("second_party", session.second_party)),
            )

        if update.session_expiry is not None:
            expiry = now + timedelta(seconds=update.session_expiry)
            values["expiry_time"] = expiry
            values["duration"] = session_duration(session.created_time, expiry)
        values["modified_time"] = now
        session = await repo.update_session(conn, session.id, values)
        await claims.set_busy_until(conn, session.id, session.busy_until())
        return (await interactions.attach(conn, [session]))[0]


async def expire_session(ctx: ServiceContext, principal: Account, uuid: str) -> Session:
    """Plivo's delete: no hard deletion, the session is marked expired now."""
    async with ctx.db.write() as conn:
        session = await _find(conn, principal, uuid)
        now = ctx.clock.now()
        if session.status_at(now) is Status.EXPIRED:
            raise InvalidRequest(messages.ALREADY_EXPIRED)
        session = await repo.update_session(
            conn,
            session.id,
            {
                "status": Status.EXPIRED.value,
                "expiry_time": now,
                "modified_time": now,
            },
        )
        await claims.set_busy_until(conn, session.id, session.busy_until())
        return session
