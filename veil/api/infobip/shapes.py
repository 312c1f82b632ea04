"""The JSON objects of the Infobip-shaped API. Numbers are E.164 digits without ``+``;
times are Infobip's (``2024-02-01T06:28:15.123+0000``); an optional field that is not
set is null (Infobip's SDK models read null and absent alike)."""

from __future__ import annotations

from typing import Any

from veil.domain.infobip import ACTION_TYPE, MaskingConfig, bare, infobip_time
from veil.service.infobip import LinkedNumber, NumberView


def _optional(value: str) -> str | None:
    return value or None


def action_object(action: MaskingConfig) -> dict[str, Any]:
    return {
        "actionKey": action.key,
        "type": ACTION_TYPE,
        "callbackUrl": action.callback_url,
        "statusUrl": _optional(action.status_url),
    }


def config_object(config: MaskingConfig) -> dict[str, Any]:
    return {
        "key": config.key,
        "name": config.name,
        "callbackUrl": config.callback_url,
        "statusUrl": _optional(config.status_url),
        "backupCallbackUrl": _optional(config.backup_callback_url),
        "backupStatusUrl": _optional(config.backup_status_url),
        "description": _optional(config.description),
        "insertDateTime": infobip_time(config.insert_time),
        "updateDateTime": infobip_time(config.update_time),
    }


def linked_numbers(found: list[LinkedNumber]) -> dict[str, Any]:
    return {"numbers": [{"numberKey": n.number_key, "number": bare(n.e164)} for n in found]}


def number_object(view: NumberView) -> dict[str, Any]:
    number = view.number
    return {
        "numberKey": number.number_key,
        "number": bare(number.e164),
        "country": number.country,
        "capabilities": ["VOICE"],
        "shared": False,
        "maskingConfigKey": view.owner.key if view.owner is not None else None,
    }


def credentials_object(credentials: tuple[str, str]) -> dict[str, Any]:
    api_id, key = credentials
    return {"apiId": api_id, "key": key}
