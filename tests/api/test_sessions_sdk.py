"""The masking session API driven by Plivo's official Python SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import plivo
import pytest
from plivo import exceptions

from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.timefmt import format_time


def parse_plivo_time(text: str) -> datetime:
    return datetime.strptime(
        text.replace(" +0000 UTC", "+0000"),
        "%Y-%m-%d %H:%M:%S.%f%z" if "." in text else "%Y-%m-%d %H:%M:%S%z",
    )


def test_create_get_update_list_delete(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    first, second = party_number(), party_number()

    created = client.masking_sessions.create_masking_session(first_party=first, second_party=second)
    assert created.message == "Session created"
    assert created.virtual_number == number  # with "+" at the top level
    session = created.session
    assert session.virtual_number == number.lstrip("+")  # without it inside
    assert (session.first_party, session.second_party) == (first[1:], second[1:])
    assert session.status == "active"
    assert (session.duration, session.call_time_limit, session.ring_timeout) == (3600, 3600, 120)
    assert session.interaction is None
    assert format_time(parse_plivo_time(session.created_time)) == session.created_time

    got = client.masking_sessions.get_masking_session(created.session_uuid)
    assert got.response.session_uuid == created.session_uuid
    assert got.response.status == "active"

    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, session_expiry=600, record=True, call_time_limit=1800
    )
    assert updated.message == "Session updated"
    assert updated.session.record is True
    assert updated.session.call_time_limit == 1800
    expiry = parse_plivo_time(updated.session.expiry_time)
    modified = parse_plivo_time(updated.session.modified_time)
    assert (expiry - modified).total_seconds() == 600

    listed = client.masking_sessions.list_masking_session()
    assert listed.response.meta.total_count == 1
    [obj] = listed.response.objects
    assert obj.resource_uri == (
        f"/v1/Account/{account.auth_id}/Masking/Session/{created.session_uuid}/"
    )

    deleted = client.masking_sessions.delete_masking_session(created.session_uuid)
    assert deleted.message == "Session expired"
    assert (
        client.masking_sessions.get_masking_session(created.session_uuid).response.status
        == "expired"
    )
    with pytest.raises(exceptions.ValidationError, match=messages.ALREADY_EXPIRED):
        client.masking_sessions.delete_masking_session(created.session_uuid)
