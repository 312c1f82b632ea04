"""The Infobip-compatible number masking API (seed 003; peers.md section 2).

v1, per number: ``/numbers/1/numbers/{numberKey}/actions`` and ``/numbers/1/files``;
v2: ``/voice/masking/2/config`` (with the numbers linked to each configuration),
``/voice/masking/2/credentials`` and ``/voice/masking/1/upload``. Paths have no trailing
slash, as Infobip's SDKs send them. Errors have Infobip's shape (``errors``), whatever
raised them; authentication is Basic or ``App <api key>`` (``auth``).
"""

from __future__ import annotations

from fastapi import APIRouter

from veil.api.infobip import configs, credentials, files, numbers
from veil.api.infobip.errors import owns_path
from veil.api.infobip.schemas import SECURITY_SCHEME

__all__ = ["SECURITY_SCHEME", "owns_path", "routers"]

routers: list[APIRouter] = [numbers.router, configs.router, credentials.router, files.router]
