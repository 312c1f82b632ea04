"""Virtual numbers: the pool sessions are allocated from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class VirtualNumber:
    id: int
    e164: str
    account_id: int  # the main account that owns it
    subaccount_id: int | None  # scope: only this subaccount's sessions may use it
    subaccount: str  # that subaccount's auth_id, or ""
    country: str  # ISO 3166-1 alpha-2
    reserved: bool  # excluded from automatic allocation
    alias: str | None
    carrier: str
    region: str
    number_type: str
    added_time: datetime
    number_key: str = ""  # Infobip's name for it in paths
    masking_config_id: int | None = None  # owned by an Infobip-style configuration
