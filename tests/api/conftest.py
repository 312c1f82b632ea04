"""The API tests' SDK client is watched: any 5xx from Veil fails the test on the spot."""

from __future__ import annotations

import plivo
import pytest

from tests.api.sdk_support import sdk_client
from tests.servers import Server
from veil.domain.accounts import Account


@pytest.fixture
def client(server: Server, account: Account) -> plivo.RestClient:
    return sdk_client(server.url, account)
