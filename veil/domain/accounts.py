"""Accounts: a main account and the subaccounts under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    auth_id: str
    auth_token: str
    name: str
    parent_id: int | None  # None for a main account
    enabled: bool
    created_time: datetime
    modified_time: datetime

    @property
    def is_subaccount(self) -> bool:
        return self.parent_id is not None

    @property
    def main_account_id(self) -> int:
        """The main account this account's data belongs to."""
        return self.parent_id if self.parent_id is not None else self.id
