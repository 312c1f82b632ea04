"""Call rules (veil/domain/calls.py): caller numbers, routing through a session, how a
leg's SIP outcome maps to Plivo's statuses, causes and events, and billing.

Pure functions: sessions are built in memory, "now" is a fixed instant.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from veil.domain.calls import (
    BILLING_INCREMENT,
    NO_ACTIVE_SESSION,
    NOT_A_VIRTUAL_NUMBER,
    PIN_NEEDS_MEDIA,
    SINGLE_PARTY,
    UNKNOWN_CALLER,
    Announce,
    AskPin,
    Bridge,
    HangupCause,
    LegEvent,
    LegStatus,
    Reject,
    Role,
    billed_seconds,
    hangup_cause_for,
    leg_status_for,
    party_event,
    play_url,
    relay_status,
    route_inbound,
)
from veil.domain.events import SessionEvent
from veil.domain.phone import normalize_number
from veil.domain.session import Session, Status
from veil.domain.session_params import CALL_TIME_LIMIT, Profile, SessionSettings

NOW = datetime(2024, 2, 1, 12, 0, 0, tzinfo=UTC)
VIRTUAL = "+912269947011"
FIRST = "+919003459051"
SECOND = "+918197241073"
STRANGER = "+14155550100"

# --- normalize_number -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "number"),
    [
        ("+14155550100", "+14155550100"),
        ("14155550100", "+14155550100"),  # E.164 without '+'
        ("0014155550100", "+14155550100"),  # the international 00 prefix
        ("+1-415-555-0100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("1.415.555.0100", "+14155550100"),
        ("00 1 415 555 0100", "+14155550100"),
        ("%2B14155550100", "+14155550100"),  # an escaped '+' left in the user part
        ("%2b14155550100", "+14155550100"),
        ("+919003459051", "+919003459051"),
        ("123456", "+123456"),  # six digits: the shortest accepted
        ("+123456789012345", "+123456789012345"),  # fifteen digits: E.164's longest
    ],
)
def test_normalize_number(user: str, number: str) -> None:
    assert normalize_number(user) == number


@pytest.mark.parametrize(
    "user",
    [
        None,
        "",
        "anonymous",
        "Anonymous",
        "unknown",
        "alice",
        "+",
        "12345",  # too short
        "+12345",
        "1234567890123456",  # sixteen digits: too long
        "+1234567890123456",
        "001234567890123456",  # too long once the 00 is read as '+'
        "+1415555010x",
        "++14155550100",
        "14155550100@example.com",
    ],
)
def test_normalize_number_refuses(user: str | None) -> None:
    assert normalize_number(user) is None


def test_normalize_number_ignores_telephone_subscriber_parameters() -> None:
    # RFC 3261 19.1.1 lets a user part be a telephone-subscriber with parameters, and
    # carriers send them: number portability (RFC 4694 npdi, rn) on the Request-URI,
    # calling party category (RFC 4904 cpc) on From and P-Asserted-Identity. The URI
    # parser leaves them in the user part; the number is what precedes them.
    for user in (
        "+14155550100;npdi",
        "+14155550100;npdi;rn=+14155559999",
        "+14155550100;cpc=ordinary",
        "14155550100;isub=123",
    ):
        assert normalize_number(user) == "+14155550100", user


def test_normalized_numbers_are_stable() -> None:
    # What comes out is already normal: normalising again changes nothing.
    for user in ("0014155550100", "%2B1 415 555 0100", "919003459051"):
        once = normalize_number(user)
        assert once is not None
        assert normalize_number(once) == once


# --- route_inbound ----------------------------------------------------------------------------


def settings(**overrides: Any) -> SessionSettings:
    """Plivo's defaults for a current-API session, plus ``overrides``."""
    return SessionSettings(call_time_limit=CALL_TIME_LIMIT[Profile.CURRENT].default, **overrides)


def make_session(
    *,
    id: int = 1,
    first: str = FIRST,
    second: str = SECOND,
    status: Status = Status.ACTIVE,
    expiry: datetime = NOW + timedelta(hours=1),
    **overrides: Any,
) -> Session:
    created = NOW - timedelta(minutes=5)
    return Session(
        id=id,
        uuid=f"c28b77d4-21e7-43bd-9447-{id:012d}",
        account_id=1,
        main_account_id=1,
        subaccount="",
        number_id=1,
        virtual_number=VIRTUAL,
        first_party=first,
        second_party=second,
        status=status,
        created_time=created,
        modified_time=created,
        expiry_time=expiry,
        duration=int((expiry - created).total_seconds()),
        settings=settings(**overrides),
    )


def pin_session(*, force: bool = False, **kwargs: Any) -> Session:
    return make_session(
        is_pin_authentication_required=True,
        first_party_pin="1234",
        second_party_pin="4321",
        pin_prompt_play="https://example.com/prompt.wav",
        force_pin_authentication=force,
        **kwargs,
    )


def test_first_party_reaches_the_second() -> None:
    session = make_session()
    decision = route_inbound(FIRST, [session], NOW)
    assert decision == Bridge(session, Role.FIRST, FIRST, SECOND)


def test_second_party_reaches_the_first() -> None:
    session = make_session()
    decision = route_inbound(SECOND, [session], NOW)
    assert decision == Bridge(session, Role.SECOND, SECOND, FIRST)


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.IN_PROGRESS])
def test_a_call_in_progress_does_not_stop_another(status: Status) -> None:
    session = make_session(status=status)
    decision = route_inbound(SECOND, [session], NOW)
    assert isinstance(decision, Bridge)
    assert decision.callee == FIRST


@pytest.mark.parametrize("caller", [STRANGER, None, ""])
def test_unknown_caller_is_refused(caller: str | None) -> None:
    assert route_inbound(caller, [make_session()], NOW) == UNKNOWN_CALLER


def test_reject_values() -> None:
    rejects = [NOT_A_VIRTUAL_NUMBER, NO_ACTIVE_SESSION, UNKNOWN_CALLER, PIN_NEEDS_MEDIA]
    rejects.append(SINGLE_PARTY)
    assert all(isinstance(r, Reject) for r in rejects)
    assert [r.status for r in rejects] == [404, 404, 403, 403, 480]
    reasons = [r.reason for r in rejects]
    assert len(set(reasons)) == len(reasons)  # the two 404s and the two 403s differ
    # A Reason header value: one line of text.
    assert all(r and "\r" not in r and "\n" not in r for r in reasons)


@pytest.mark.parametrize("caller", [FIRST, SECOND, STRANGER, None])
def test_no_sessions_on_the_number(caller: str | None) -> None:
    assert route_inbound(caller, [], NOW) == NO_ACTIVE_SESSION


@pytest.mark.parametrize(
    "expired",
    [
        make_session(status=Status.EXPIRED),  # deleted before its time
        make_session(status=Status.EXPIRED, expiry=NOW + timedelta(hours=1)),
        make_session(expiry=NOW),  # expires exactly now: not swept yet, but over
        make_session(expiry=NOW - timedelta(seconds=1)),
        make_session(status=Status.IN_PROGRESS, expiry=NOW - timedelta(minutes=1)),
    ],
)
@pytest.mark.parametrize("caller", [FIRST, SECOND, STRANGER])
def test_expired_sessions_do_not_route(expired: Session, caller: str) -> None:
    assert route_inbound(caller, [expired], NOW) == NO_ACTIVE_SESSION


def test_live_until_the_last_microsecond() -> None:
    session = make_session(expiry=NOW + timedelta(microseconds=1))
    assert isinstance(route_inbound(FIRST, [session], NOW), Bridge)


def test_expired_session_of_the_caller_is_skipped_for_a_live_one() -> None:
    old = make_session(id=1, second=STRANGER, status=Status.EXPIRED)
    live = make_session(id=2)
    decision = route_inbound(FIRST, [old, live], NOW)
    assert isinstance(decision, Bridge)
    assert decision.session is live
    assert decision.callee == SECOND


def test_caller_of_an_expired_session_only_is_unknown_to_the_live_ones() -> None:
    old = make_session(id=1, first=STRANGER, expiry=NOW - timedelta(seconds=1))
    live = make_session(id=2)
    assert route_inbound(STRANGER, [old, live], NOW) == UNKNOWN_CALLER


def test_several_live_sessions_on_the_number() -> None:
    others = [
        make_session(id=1, first="+919000000001", second="+919000000002"),
        make_session(id=2, first="+919000000003", second="+919000000004"),
    ]
    mine = make_session(id=3, first="+919000000005", second=FIRST)
    sessions = [others[0], mine, others[1]]

    decision = route_inbound(FIRST, sessions, NOW)
    assert decision == Bridge(mine, Role.SECOND, FIRST, "+919000000005")

    decision = route_inbound("+919000000004", sessions, NOW)
    assert decision == Bridge(others[1], Role.SECOND, "+919000000004", "+919000000003")

    assert route_inbound(STRANGER, sessions, NOW) == UNKNOWN_CALLER


@pytest.mark.parametrize(
    ("first", "second", "caller"),
    [
        (FIRST, "", FIRST),
        ("", SECOND, SECOND),
    ],
)
def test_single_party_session(first: str, second: str, caller: str) -> None:
    session = make_session(first=first, second=second, create_session_with_single_party=True)
    assert route_inbound(caller, [session], NOW) == SINGLE_PARTY


@pytest.mark.parametrize("caller", [None, "", STRANGER])
def test_missing_party_is_no_one(caller: str | None) -> None:
    # The empty party of a single-party session must not match an anonymous caller.
    session = make_session(second="", create_session_with_single_party=True)
    assert route_inbound(caller, [session], NOW) == UNKNOWN_CALLER


@pytest.mark.parametrize("caller", [STRANGER, None])
def test_pin_session_unknown_caller_is_asked_for_a_pin(caller: str | None) -> None:
    session = pin_session()
    assert route_inbound(caller, [session], NOW) == AskPin(session, caller)


@pytest.mark.parametrize("caller", [STRANGER, None])
def test_pin_session_without_media_is_refused(caller: str | None) -> None:
    assert route_inbound(caller, [pin_session()], NOW, media=False) == PIN_NEEDS_MEDIA


@pytest.mark.parametrize("caller", [FIRST, SECOND])
def test_pin_session_forced_pin_asks_known_callers(caller: str) -> None:
    session = pin_session(force=True)
    assert route_inbound(caller, [session], NOW) == AskPin(session, caller)
    assert route_inbound(caller, [session], NOW, media=False) == PIN_NEEDS_MEDIA


def test_unknown_caller_hears_the_announcement() -> None:
    session = make_session(unknown_caller_play="https://example.com/sorry.wav")
    assert route_inbound(STRANGER, [session], NOW) == Announce(session)
    # Without a media engine, or without the URL: refused without answering.
    assert route_inbound(STRANGER, [session], NOW, media=False) == UNKNOWN_CALLER
    assert route_inbound(STRANGER, [make_session()], NOW) == UNKNOWN_CALLER
    # A party of the session is bridged as ever.
    assert isinstance(route_inbound(FIRST, [session], NOW), Bridge)


def test_play_url_per_party() -> None:
    session = make_session(
        first_party_play_url="https://example.com/1.wav",
        second_party_play_url="https://example.com/2.wav",
    )
    assert play_url(session, Role.FIRST) == "https://example.com/1.wav"
    assert play_url(session, Role.SECOND) == "https://example.com/2.wav"
    assert play_url(make_session(), Role.FIRST) == ""


@pytest.mark.parametrize(
    ("caller", "role", "callee"), [(FIRST, Role.FIRST, SECOND), (SECOND, Role.SECOND, FIRST)]
)
def test_pin_session_known_caller_without_force_is_bridged(
    caller: str, role: Role, callee: str
) -> None:
    session = pin_session()
    decision = route_inbound(caller, [session], NOW)
    assert decision == Bridge(session, role, caller, callee, authorized_caller=True)


def test_unknown_caller_with_one_pin_session_among_several() -> None:
    plain = make_session(id=1, first="+919000000001", second="+919000000002")
    pinned = replace(pin_session(), id=2)
    assert route_inbound(STRANGER, [plain, pinned], NOW) == AskPin(pinned, STRANGER)
    # A known caller of the plain session is still bridged.
    assert isinstance(route_inbound("+919000000001", [plain, pinned], NOW), Bridge)


def test_expired_pin_session_does_not_ask_for_a_pin() -> None:
    expired = pin_session(expiry=NOW)
    assert route_inbound(STRANGER, [expired], NOW) == NO_ACTIVE_SESSION
    live = make_session(id=2, first="+919000000001", second="+919000000002")
    assert route_inbound(STRANGER, [expired, live], NOW) == UNKNOWN_CALLER


def test_role_other() -> None:
    assert Role.FIRST.other is Role.SECOND
    assert Role.SECOND.other is Role.FIRST


# --- SIP outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sip_status", "status"),
    [
        (486, LegStatus.BUSY),
        (600, LegStatus.BUSY),
        (408, LegStatus.NO_ANSWER),
        (480, LegStatus.NO_ANSWER),
        (487, LegStatus.CANCELED),
        (403, LegStatus.FAILED),
        (404, LegStatus.FAILED),
        (484, LegStatus.FAILED),
        (488, LegStatus.FAILED),
        (500, LegStatus.FAILED),
        (503, LegStatus.FAILED),
        (603, LegStatus.FAILED),
        (604, LegStatus.FAILED),
    ],
)
def test_leg_status_for(sip_status: int, status: LegStatus) -> None:
    assert leg_status_for(sip_status) is status


def test_leg_status_values_are_plivos() -> None:
    assert [s.value for s in LegStatus] == [
        "completed",
        "busy",
        "no-answer",
        "canceled",
        "failed",
        "not-dialed",
    ]


@pytest.mark.parametrize(
    ("sip_status", "relayed"),
    [
        (401, 503),  # the trunk's challenge is Veil's business, not the caller's
        (407, 503),
        (300, 480),
        (301, 480),
        (302, 480),
        (305, 480),
        (380, 480),
        (399, 480),
        (400, 400),
        (403, 403),
        (404, 404),
        (408, 408),
        (480, 480),
        (486, 486),
        (487, 487),
        (488, 488),
        (500, 500),
        (503, 503),
        (600, 600),
        (603, 603),
    ],
)
def test_relay_status(sip_status: int, relayed: int) -> None:
    assert relay_status(sip_status) == relayed


@pytest.mark.parametrize(
    ("status", "sip_status", "cause"),
    [
        (LegStatus.BUSY, 486, HangupCause.BUSY),
        (LegStatus.BUSY, 600, HangupCause.BUSY),
        (LegStatus.NO_ANSWER, 408, HangupCause.NO_ANSWER),
        (LegStatus.NO_ANSWER, 480, HangupCause.NO_ANSWER),
        (LegStatus.CANCELED, 487, HangupCause.CANCELED),
        (LegStatus.FAILED, 403, HangupCause.REJECTED),
        (LegStatus.FAILED, 603, HangupCause.REJECTED),
        (LegStatus.FAILED, 404, HangupCause.FAILED),
        (LegStatus.FAILED, 500, HangupCause.FAILED),
        (LegStatus.FAILED, 503, HangupCause.FAILED),
    ],
)
def test_hangup_cause_for(status: LegStatus, sip_status: int, cause: HangupCause) -> None:
    assert hangup_cause_for(status, sip_status) is cause


@pytest.mark.parametrize("sip_status", [403, 404, 408, 480, 486, 487, 488, 500, 503, 600, 603])
def test_hangup_cause_agrees_with_leg_status(sip_status: int) -> None:
    cause = hangup_cause_for(leg_status_for(sip_status), sip_status)
    expected = {
        403: HangupCause.REJECTED,
        603: HangupCause.REJECTED,
        486: HangupCause.BUSY,
        600: HangupCause.BUSY,
        408: HangupCause.NO_ANSWER,
        480: HangupCause.NO_ANSWER,
        487: HangupCause.CANCELED,
    }.get(sip_status, HangupCause.FAILED)
    assert cause is expected


def test_hangup_cause_codes_are_unique() -> None:
    codes = [cause.code for cause in HangupCause]
    assert len(codes) == len(HangupCause) == 8
    assert len(set(codes)) == len(codes)
    assert all(isinstance(code, int) and 1000 <= code <= 9999 for code in codes)
    assert HangupCause.NORMAL.code == 4000


def test_hangup_cause_names() -> None:
    assert {cause.value for cause in HangupCause} == {
        "normal_hangup",
        "busy_line",
        "no_answer",
        "cancelled_by_caller",
        "call_rejected",
        "destination_unreachable",
        "call_time_limit_reached",
        "ring_timeout_reached",
    }


# --- Billing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connected", "billed"),
    [
        (0, 0),
        (0.0, 0),
        (-1.0, 0),
        (0.2, 60),
        (1, 60),
        (59.999, 60),
        (60, 60),
        (60.0, 60),
        (60.01, 120),
        (61, 120),
        (119.5, 120),
        (120, 120),
        (3600, 3600),
        (3600.5, 3660),
    ],
)
def test_billed_seconds(connected: float, billed: int) -> None:
    assert billed_seconds(connected) == billed
    assert isinstance(billed_seconds(connected), int)


def test_billing_increment_is_a_minute() -> None:
    assert BILLING_INCREMENT == 60


# --- Events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "event", "name"),
    [
        (Role.FIRST, LegEvent.INITIATED, "SessionFirstPartyInitiated"),
        (Role.FIRST, LegEvent.RINGING, "SessionFirstPartyRinging"),
        (Role.FIRST, LegEvent.ANSWER, "SessionFirstPartyAnswer"),
        (Role.FIRST, LegEvent.HANGUP, "SessionFirstPartyHangup"),
        (Role.FIRST, LegEvent.COMPLETE, "SessionFirstPartyComplete"),
        (Role.FIRST, LegEvent.FAILED, "SessionFirstPartyFailed"),
        (Role.SECOND, LegEvent.INITIATED, "SessionSecondPartyInitiated"),
        (Role.SECOND, LegEvent.RINGING, "SessionSecondPartyRing"),  # not "Ringing"
        (Role.SECOND, LegEvent.ANSWER, "SessionSecondPartyAnswer"),
        (Role.SECOND, LegEvent.HANGUP, "SessionSecondPartyHangup"),
        (Role.SECOND, LegEvent.COMPLETE, "SessionSecondPartyComplete"),
        (Role.SECOND, LegEvent.FAILED, "SessionSecondPartyFailed"),
    ],
)
def test_party_event_names_are_plivos(role: Role, event: LegEvent, name: str) -> None:
    found = party_event(role, event)
    assert isinstance(found, SessionEvent)
    assert str(found) == name


def test_party_events_are_all_distinct() -> None:
    names = [party_event(role, event) for role in Role for event in LegEvent]
    assert len(names) == len(set(names)) == 12
