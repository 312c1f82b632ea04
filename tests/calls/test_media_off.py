"""A server without media (``VEIL_MEDIA=off``) refuses the session settings only a media
engine can honour, with a clear 400, instead of accepting and silently not doing them."""

from __future__ import annotations

from typing import Any

import pytest
from plivo import exceptions

from tests.calls.conftest import Plane
from tests.utils import party_number
from veil.domain import messages


@pytest.mark.parametrize(
    "params",
    [
        {"record": True},
        {
            "is_pin_authentication_required": True,
            "generate_pin": True,
            "pin_prompt_play": "https://example.com/pin.mp3",
        },
        {"first_party_play_url": "https://example.com/hello.mp3"},
        {"second_party_play_url": "https://example.com/hello.mp3"},
        {"unknown_caller_play": "https://example.com/sorry.mp3"},
    ],
)
def test_sessions_needing_media_are_refused(plane: Plane, params: dict[str, Any]) -> None:
    plane.admin.add_numbers(plane.account)
    with pytest.raises(exceptions.ValidationError, match="need media"):
        plane.client.masking_sessions.create_masking_session(
            first_party=party_number(), second_party=party_number(), **params
        )


def test_updates_that_need_media_are_refused_and_others_pass(plane: Plane) -> None:
    session = plane.session()
    uuid = session["session_uuid"]
    sessions = plane.client.masking_sessions
    with pytest.raises(exceptions.ValidationError) as refused:
        sessions.update_masking_session(uuid, record=True)
    assert messages.MEDIA_OFF in str(refused.value)
    sessions.update_masking_session(uuid, ring_timeout=30, record=False)
    assert plane.get(uuid)["ring_timeout"] == 30
    assert plane.get(uuid)["record"] is False
