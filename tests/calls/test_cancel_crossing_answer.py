"""A callee's answer that crosses Veil's CANCEL: the call must still end (found while
testing ``initiate_call_to_first_party``; the code path is the B2BUA's)."""

from __future__ import annotations

from tests.calls.conftest import Plane
from tests.calls.test_initiate_call import ended, phones, place_call


def test_party_two_answering_as_the_ring_timeout_cancels_it_ends_the_call(
    plane: Plane,
) -> None:
    """Party two's 200 crosses Veil's CANCEL (ring timeout, 5 s). ``Call._b_response``
    (b2bua.py) ACKs and BYEs that 200 in phase ENDING but never calls ``_finish``: no 487
    will come, so the call never ends, no interaction is stored and the session stays
    ``in-progress``. Inbound calls share the code path (a callee answering as the ring
    timeout or the caller's CANCEL cancels it)."""
    session, result = place_call(plane, "second_answers_late", ring_timeout=5)
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None
    assert one.received("BYE")
    assert two.received("CANCEL") and two.received("ACK") and two.received("BYE")
    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "no-answer"
    assert done["status"] == "active"
