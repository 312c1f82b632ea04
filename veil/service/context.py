"""What every use case needs: the database and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from veil.clock import Clock
from veil.domain.session import Session
from veil.store.db import Database


@dataclass(slots=True)
class MediaState:
    """Whether this process can record, play and collect digits; the call plane sets
    it at startup (``VEIL_MEDIA=off``, or no rtpengine installed: False)."""

    available: bool = True


@dataclass(frozen=True, slots=True)
class ServiceContext:
    db: Database
    clock: Clock
    # Called with each new session that asks Veil to call its first party
    # (``initiate_call_to_first_party``); the call plane registers itself here.
    originate: list[Callable[[Session], None]] = field(default_factory=list)
    media: MediaState = field(default_factory=MediaState)
    # VEIL_PUBLIC_URL (app.py passes the setting): the base of absolute URLs in callbacks,
    # such as a recording's RecordingURL.
    public_url: str = "http://127.0.0.1:8000"
