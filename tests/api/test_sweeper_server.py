"""The running server's own sweeper: a session whose expiry has passed is marked expired
and its SessionTimeout callback lands in the outbox, without any request."""

from __future__ import annotations

import time

import orjson
import plivo

from tests.api.sdk_support import expire_by_time
from tests.utils import Admin, party_number
from veil.domain.accounts import Account

SWEEP_DEADLINE = 15.0  # seconds; the sweeper runs every second


def test_background_sweeper_expires_and_reports(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    first, second = party_number(), party_number()
    created = client.masking_sessions.create_masking_session(
        first_party=first, second_party=second, callback_url="https://example.com/events"
    )
    expire_by_time(admin, created.session_uuid)  # backdated: no waiting for the expiry
    # Readers see it expired at once, whether or not the sweeper has run.
    got = client.masking_sessions.get_masking_session(created.session_uuid)
    assert got.response.status == "expired"

    query = (
        "SELECT o.event, o.payload, s.status FROM outbox o JOIN sessions s"
        " ON s.id = o.session_id WHERE s.uuid = :uuid"
    )
    deadline = time.monotonic() + SWEEP_DEADLINE
    rows = admin.sql(query, uuid=created.session_uuid)
    while not rows and time.monotonic() < deadline:  # bounded wait for the background task
        time.sleep(0.1)
        rows = admin.sql(query, uuid=created.session_uuid)
    [(event, payload, status)] = rows
    assert (event, status) == ("SessionTimeout", "expired")
    params = orjson.loads(payload)
    assert params["SessionUUID"] == created.session_uuid
    assert params["VirtualNumber"] == number.lstrip("+")
    assert (params["FirstParty"], params["SecondParty"]) == (first[1:], second[1:])
    assert params["SequenceNumber"] == "1"
