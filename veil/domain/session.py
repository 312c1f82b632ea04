"""The masking session as the rest of Veil sees it, and its lifecycle rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from veil.domain.session_params import SessionSettings


class Status(enum.StrEnum):
    ACTIVE = "active"
    IN_PROGRESS = "in-progress"  # a call is up (set by the call plane)
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """One finished call through a session (Plivo's interaction object)."""

    uuid: str
    start_time: datetime
    end_time: datetime
    first_party_call_uuid: str | None
    second_party_call_uuid: str | None
    first_party_status: str
    second_party_status: str
    duration: int
    billed_duration: int
    call_count: int
    recording_id: str | None = None  # the call's recording, once it is stored


@dataclass(frozen=True, slots=True)
class Session:
    """One stored session. Parties and the virtual number are E.164 with ``+``;
    a missing party of a single-party session is ``""``."""

    id: int
    uuid: str
    account_id: int  # the owner: a main account or a subaccount
    main_account_id: int
    subaccount: str  # the owner's auth_id when it is a subaccount, else ""
    number_id: int | None  # None once the number was removed from the pool
    virtual_number: str
    first_party: str
    second_party: str
    status: Status
    created_time: datetime
    modified_time: datetime
    expiry_time: datetime
    duration: int
    settings: SessionSettings
    total_call_count: int = 0
    total_call_billed_duration: int = 0
    last_interaction_time: datetime | None = None
    interactions: tuple[InteractionRecord, ...] = ()  # loaded by the readers that show them

    def status_at(self, now: datetime) -> Status:
        """The status a reader sees: expired the moment ``expiry_time`` passes,
        whether or not the sweeper has run yet."""
        if self.status is Status.EXPIRED or self.expiry_time <= now:
            return Status.EXPIRED
        return self.status

    def busy_until(self) -> datetime:
        """Until when the virtual number stays claimed by this session's parties and PINs."""
        return holds_number_until(self.expiry_time, self.settings.virtual_number_cooloff_period)


def holds_number_until(expiry_time: datetime, cooloff_seconds: int) -> datetime:
    """A session holds its virtual number until its expiry plus its cool-off period."""
    return expiry_time + timedelta(seconds=cooloff_seconds)


def session_duration(created: datetime, expiry: datetime) -> int:
    """Plivo's ``duration``: whole seconds from creation to expiry."""
    return int((expiry - created).total_seconds())
