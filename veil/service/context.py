"""What every use case needs: the database and the clock."""

from __future__ import annotations

from dataclasses import dataclass

from veil.clock import Clock
from veil.store.db import Database


@dataclass(frozen=True, slots=True)
class ServiceContext:
    db: Database
    clock: Clock
