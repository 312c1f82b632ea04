"""Plivo's JSON shapes for sessions, numbers, accounts (plivo-wire.md sections 5-7) and
recordings (Plivo's Voice API Recording object).

Types follow Go's structs, the strictest SDK: integers for amounts and PIN settings,
real booleans, ``interaction`` null or an array. Numbers inside objects have no ``+``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from veil.domain.accounts import Account
from veil.domain.numbers import VirtualNumber
from veil.domain.phone import country_name
from veil.domain.pool_report import PoolReport
from veil.domain.recordings import (
    Recording,
    epoch_ms,
    format_add_time,
    media_uri,
    milliseconds,
    resource_uri,
    rounded_duration,
)
from veil.domain.session import InteractionRecord, Session
from veil.domain.session_params import SETTINGS_FIELDS
from veil.domain.timefmt import format_time


def api_id() -> str:
    return str(uuid.uuid4())


def _digits(e164: str) -> str:
    return e164.lstrip("+")


def session_object(session: Session, now: datetime, account_url: str = "") -> dict[str, Any]:
    """``account_url`` (``{public_url}/v1/Account/{auth_id}``) prefixes the interactions'
    call and recording resource URLs."""
    settings = session.settings
    obj: dict[str, Any] = {
        "session_uuid": session.uuid,
        "first_party": _digits(session.first_party),
        "second_party": _digits(session.second_party),
        "virtual_number": _digits(session.virtual_number),
        "status": session.status_at(now).value,
        "created_time": format_time(session.created_time),
        "modified_time": format_time(session.modified_time),
        "expiry_time": format_time(session.expiry_time),
        "duration": session.duration,
        "amount": 0,
        "interaction": [_interaction(i, account_url) for i in session.interactions] or None,
        "total_call_amount": 0,
        "total_call_count": session.total_call_count,
        "total_call_billed_duration": session.total_call_billed_duration,
        "total_session_amount": 0,
        "last_interaction_time": (
            format_time(session.last_interaction_time) if session.last_interaction_time else ""
        ),
        "subaccount": session.subaccount,
    }
    for name in SETTINGS_FIELDS:
        obj[name] = getattr(settings, name)
    return obj


def _interaction(record: InteractionRecord, account_url: str) -> dict[str, Any]:
    """Plivo's interaction object (plivo-wire.md section 7), Go's field types."""

    def call_url(call_uuid: str | None) -> str | None:
        return f"{account_url}/Call/{call_uuid}/" if call_uuid else None

    def recording_url(recording_id: str | None) -> str | None:
        return f"{account_url}/Recording/{recording_id}/" if recording_id else None

    return {
        "start_time": format_time(record.start_time),
        "end_time": format_time(record.end_time),
        "first_party_resource_url": call_url(record.first_party_call_uuid),
        "second_party_resource_url": call_url(record.second_party_call_uuid),
        "first_party_status": record.first_party_status,
        "second_party_status": record.second_party_status,
        "recording_resource_url": recording_url(record.recording_id),
        "type": "call",
        "total_call_amount": 0,
        "call_billed_duration": record.billed_duration,
        "total_call_count": record.call_count,
        "duration": record.duration,
    }


def session_uri(auth_id: str, session_uuid: str, *, legacy: bool = False) -> str:
    middle = "Session" if legacy else "Masking/Session"
    return f"/v1/Account/{auth_id}/{middle}/{session_uuid}/"


def meta(
    *, base: str, limit: int, offset: int, total: int, params: dict[str, str]
) -> dict[str, Any]:
    """The list ``meta`` block; ``next``/``previous`` keep the caller's filters."""

    def page(at: int) -> str:
        return base + "?" + urlencode({**params, "limit": limit, "offset": at})

    return {
        "limit": limit,
        "offset": offset,
        "total_count": total,
        "next": page(offset + limit) if offset + limit < total else None,
        "previous": page(max(offset - limit, 0)) if offset > 0 else None,
    }


def number_object(number: VirtualNumber, auth_id: str) -> dict[str, Any]:
    digits = _digits(number.e164)
    return {
        "number": digits,
        "alias": number.alias,
        "added_on": number.added_time.strftime("%Y-%m-%d"),
        "active": True,
        "application": None,
        "carrier": number.carrier,
        "region": number.region,
        "country": country_name(number.e164),
        "country_iso": number.country,
        "number_type": number.number_type,
        "monthly_rental_rate": "0.00000",
        "voice_enabled": True,
        "voice_rate": "0.00000",
        "sms_enabled": False,
        "sms_rate": "0.00000",
        "mms_enabled": False,
        "mms_rate": "0.00000",
        "sub_account": number.subaccount or None,
        "reserved": number.reserved,
        "resource_uri": f"/v1/Account/{auth_id}/Number/{digits}/",
    }


def pool_report_object(report: PoolReport) -> dict[str, Any]:
    """One pool of the report (``GET /v1/Account/{auth_id}/Number/Report/``)."""
    return {
        "subaccount": report.subaccount,
        "country": report.country,
        "numbers": report.numbers,
        "in_use": report.in_use,
        "busiest_party_now": report.busiest_party_now,
        "busiest_party_7d": report.busiest_party_7d,
        "needed_7d": report.needed_7d,
        "plivo_rule_7d": report.plivo_rule_7d,
        "headroom": report.headroom,
        "status": report.status.value,
    }


def account_object(account: Account, main_auth_id: str) -> dict[str, Any]:
    """A subaccount as Plivo's Subaccount resource shows it."""
    return {
        "auth_id": account.auth_id,
        "auth_token": account.auth_token,
        "name": account.name,
        "enabled": account.enabled,
        "account": f"/v1/Account/{main_auth_id}/",
        "created": account.created_time.strftime("%Y-%m-%d"),
        "modified": account.modified_time.strftime("%Y-%m-%d"),
        "resource_uri": f"/v1/Account/{main_auth_id}/Subaccount/{account.auth_id}/",
    }


def recording_object(recording: Recording, auth_id: str, public_url: str) -> dict[str, Any]:
    """Plivo's Recording object, as seen by ``auth_id`` (whose path serves the file).
    Veil stores recordings without charge: the amounts and rates are 0."""
    return {
        "add_time": format_add_time(recording.add_time),
        "call_uuid": recording.call_uuid,
        "conference_name": None,
        "from_number": recording.from_number,
        "to_number": recording.to_number,
        "monthly_recording_storage_amount": 0,
        "recording_duration_ms": milliseconds(recording.duration * 1000),
        "recording_end_ms": milliseconds(epoch_ms(recording.end_time)),
        "recording_format": recording.file_format,
        "recording_id": recording.recording_id,
        "recording_start_ms": milliseconds(epoch_ms(recording.start_time)),
        "recording_storage_duration": 0,
        "recording_storage_rate": 0,
        "recording_type": recording.recording_type,
        "recording_url": public_url
        + media_uri(auth_id, recording.recording_id, recording.file_format),
        "resource_uri": resource_uri(auth_id, recording.recording_id),
        "rounded_recording_duration": rounded_duration(recording.duration),
    }
