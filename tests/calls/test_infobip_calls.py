"""Calls to numbers of Infobip-style configurations, through a real ``veil serve`` with its
own rtpengine: Veil asks the customer's application (a real HTTP server of the test) what
to do with each call, carries out dial, audio and captureDtmf with SIPp as the trunk and
the phones, and posts the status report afterwards.

The configuration, its number and the audio files are set up through Veil's own
Infobip-compatible API, as a customer would."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.calls.conftest import CALLBACK_TIMEOUT, Plane
from tests.calls.customer_app import Answer, CustomerApp, customer_app
from tests.calls.media_phones import keys_xml, pause, tone_wav
from tests.calls.test_masking_calls import assert_masked, digits
from tests.calls.test_media_features import call_through, tones
from tests.utils import party_number

NOBODY = "http://127.0.0.1:9/callback"  # the discard port: nothing listens there


@pytest.fixture(scope="module")
def app() -> Iterator[CustomerApp]:
    with customer_app() as running:
        yield running


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The prompts the customer uploads, as mp3 (the tones the ears tell apart)."""
    directory = tmp_path_factory.mktemp("mp3")
    files = {}
    for name, frequency in (("sorry", 700), ("pin", 440)):
        wav = directory / f"{name}.wav"
        tone_wav(wav, frequency)
        mp3 = directory / f"{name}.mp3"
        subprocess.run(["lame", "--quiet", "-b", "32", str(wav), str(mp3)], check=True)
        files[name] = mp3.read_bytes()
    return files


class Customer:
    """The test's account on the plane, speaking Veil's Infobip-compatible API."""

    def __init__(self, plane: Plane, app: CustomerApp) -> None:
        self.plane = plane
        self.app = app
        self.prefix = "/" + uuid.uuid4().hex[:12]  # this test's paths on the shared app
        self.auth = (plane.account.auth_id, plane.account.auth_token)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(
            method, self.plane.server.url + path, auth=self.auth, timeout=30, **kwargs
        )
        assert response.status_code < 300, response.text
        return response

    def configure(
        self, *answers: Answer, backup: list[Answer] | None = None, callback_url: str = ""
    ) -> str:
        """A fresh number given to a new configuration whose callbackUrl answers
        ``answers`` in order (``backup``: its backupCallbackUrl's), or is
        ``callback_url``; the number."""
        [number] = self.plane.admin.add_numbers(self.plane.account)
        body = {
            "name": f"app {self.prefix[1:]}",
            "callbackUrl": callback_url or self.app.script(self.prefix + "/callback", *answers),
            "statusUrl": self.app.url + self.prefix + "/status",
        }
        if backup is not None:
            body["backupCallbackUrl"] = self.app.script(self.prefix + "/backup", *backup)
        key = self.api("POST", "/voice/masking/2/config", json=body).json()["key"]
        self.api("POST", f"/voice/masking/2/config/{key}/numbers", json={"numbers": [number]})
        return number

    def upload(self, mp3: bytes) -> str:
        content = base64.b64encode(mp3).decode()
        file_id: str = self.api(
            "POST", "/voice/masking/1/upload", json={"content": content}
        ).json()["fileId"]
        return file_id

    def callbacks(self, count: int = 1, path: str = "/callback") -> list[dict[str, Any]]:
        return [r.json for r in self.app.wait_for(self.prefix + path, count)]

    def status_report(self) -> dict[str, Any]:
        [report] = self.app.wait_for(self.prefix + "/status")
        body: dict[str, Any] = report.json
        return body


@pytest.fixture
def customer(media_plane: Plane, app: CustomerApp) -> Customer:
    return Customer(media_plane, app)


def dial(phone: str, caller_id: str | None = None) -> Answer:
    body = {"command": "dial", "phoneNumber": phone.lstrip("+")}
    if caller_id is not None:
        body["callerId"] = caller_id.lstrip("+")
    return Answer(body)


# --- dial ---------------------------------------------------------------------------------


def test_dial_bridges_showing_the_caller_id_given_and_never_the_callers_number(
    customer: Customer,
) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    [shown] = plane.admin.add_numbers(plane.account)  # another number of the account
    virtual = customer.configure(dial(callee, shown))
    a, b = plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    a.assert_ok()
    b.assert_ok()
    assert_masked(b, hidden=caller, virtual=shown, check_from=True)
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)

    [asked] = customer.callbacks()
    assert asked["from"] == caller.lstrip("+")
    assert asked["to"] == virtual.lstrip("+")
    assert asked["correlationId"] and asked["nmCorrelationId"]
    assert "dtmfCaptured" not in asked
    report = customer.status_report()
    assert report["action"] == "dial"
    assert report["status"] == "answered"
    assert report["from"] == caller.lstrip("+")
    assert report["to"] == virtual.lstrip("+")
    assert report["transferTo"] == callee.lstrip("+")
    assert report["correlationId"] == asked["correlationId"]
    assert report["nmCorrelationId"] == asked["nmCorrelationId"]
    assert report["answeredTime"].endswith("+0000")
    assert report["inboundDuration"] >= report["duration"] >= 0


def test_dial_without_caller_id_shows_the_called_number(customer: Customer) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    virtual = customer.configure(dial(callee))
    a, b = plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    a.assert_ok()
    b.assert_ok()
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_a_caller_id_that_is_not_the_accounts_is_refused(customer: Customer) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    spoofed = party_number()  # nobody's virtual number: the callee must never see it
    virtual = customer.configure(dial(callee, spoofed))
    a = plane.caller("caller_expects_failure", caller, virtual, expected_status="403")
    a.assert_ok()
    [refusal] = a.received_messages(403)
    assert "callerId" in (refusal.header("Reason") or "")
    report = customer.status_report()
    assert report["status"] == "failed"
    assert report["action"] == "dial"
    assert "not a number of the account" in report["cause"]


@pytest.mark.parametrize(
    ("callee_scenario", "sip_status", "status"),
    [
        ("callee_busy", "486", "busy"),
        ("callee_rejects", "603", "failed"),
        ("callee_server_error", "503", "congestion"),
    ],
)
def test_the_status_report_says_how_the_dialled_leg_ended(
    customer: Customer, callee_scenario: str, sip_status: str, status: str
) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    virtual = customer.configure(dial(callee))
    with plane.callee(callee_scenario, callee) as b:
        a = plane.caller("caller_expects_failure", caller, virtual, expected_status=sip_status)
        b.wait(20).assert_ok()
    a.assert_ok()
    report = customer.status_report()
    assert report["status"] == status
    assert report["duration"] == 0
    assert "answeredTime" not in report


def test_a_caller_who_gives_up_while_the_callee_rings_is_no_answer(customer: Customer) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    virtual = customer.configure(dial(callee))
    a, b = plane.call(
        "caller_cancels", "callee_no_answer", caller=caller, callee=callee, virtual=virtual
    )
    a.assert_ok()
    b.assert_ok()
    report = customer.status_report()
    assert report["status"] == "no answer"
    assert report["ringingTime"].endswith("+0000")
    assert report["duration"] == 0


# --- audio and captureDtmf --------------------------------------------------------------


def test_audio_plays_the_uploaded_file_to_the_caller_and_hangs_up(
    customer: Customer, mp3s: dict[str, bytes]
) -> None:
    file_id = customer.upload(mp3s["sorry"])
    virtual = customer.configure(Answer({"command": "audio", "fileId": file_id}))
    a, _, a_ear, _ = call_through(customer.plane, party_number(), virtual, [], veil_hangs_up=True)
    a.assert_ok()  # Veil answered, played, and sent the BYE
    assert tones(a_ear) == ["sorry"]
    report = customer.status_report()
    assert report["action"] == "audio"
    assert report["fileId"] == file_id
    assert report["status"] == "answered"
    assert report["transferTo"] == ""


def test_capture_dtmf_calls_back_with_the_keys_then_dials(
    customer: Customer, mp3s: dict[str, bytes]
) -> None:
    plane = customer.plane
    prompt = customer.upload(mp3s["pin"])
    caller, callee = party_number(), party_number()
    virtual = customer.configure(
        Answer({"command": "captureDtmf", "fileId": prompt, "maxLength": 6, "timeout": 3}),
        dial(callee),
    )
    a, b, a_ear, b_ear = call_through(
        plane,
        caller,
        virtual,
        [pause(1500), keys_xml("42#"), pause(1500)],
        callee=callee,
        talk_ms=1500,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    assert tones(a_ear)[:1] == ["pin"]
    first, second = customer.callbacks(2)
    assert "dtmfCaptured" not in first
    assert second["dtmfCaptured"] is True
    assert second["dtmf"] == "42"
    assert second["correlationId"] == first["correlationId"]
    # The keys never reached the callee, who was called from the virtual number.
    assert b_ear.keys() == 0
    [invite] = b.received_messages("INVITE")
    assert digits(caller) not in invite.text
    report = customer.status_report()
    assert (report["action"], report["status"]) == ("dial", "answered")


# --- when the customer's application fails ----------------------------------------------


def test_a_slow_callback_falls_over_to_the_backup_url(customer: Customer) -> None:
    plane = customer.plane
    caller, callee = party_number(), party_number()
    virtual = customer.configure(
        Answer({"command": "dial", "phoneNumber": "15550000000"}, delay=CALLBACK_TIMEOUT + 1),
        backup=[dial(callee)],
    )
    a, b = plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    a.assert_ok()
    b.assert_ok()
    [primary] = customer.callbacks(1)
    [backup] = customer.callbacks(1, "/backup")
    assert backup == primary  # the same request, to the other URL
    assert customer.status_report()["status"] == "answered"


def test_an_unreachable_callback_ends_the_call_cleanly(customer: Customer) -> None:
    plane = customer.plane
    number = customer.configure(callback_url=NOBODY)
    a = plane.caller("caller_expects_failure", party_number(), number, expected_status="503")
    a.assert_ok()
    [refusal] = a.received_messages(503)
    assert "callback failed" in (refusal.header("Reason") or "")
    report = customer.status_report()
    assert report["status"] == "failed"
    assert report["action"] == ""
    assert "callbackUrl" in report["cause"]


def test_callbacks_and_reports_are_signed_with_the_accounts_credentials(
    customer: Customer,
) -> None:
    plane = customer.plane
    api_id, key = "veil-test-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    customer.api("POST", "/voice/masking/2/credentials", json={"apiId": api_id, "key": key})
    caller, callee = party_number(), party_number()
    virtual = customer.configure(dial(callee))
    a, b = plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    a.assert_ok()
    b.assert_ok()
    report = customer.status_report()
    assert report["status"] == "answered"
    for path in ("/callback", "/status"):
        [request] = customer.app.received(customer.prefix + path)
        expected = hashlib.sha256(
            (customer.prefix + path).encode() + request.body + key.encode()
        ).hexdigest()
        assert request.headers["authorization"] == f"{api_id}:{expected}"


def test_the_number_serves_no_session_while_a_configuration_owns_it(
    customer: Customer,
) -> None:
    plane = customer.plane
    virtual = customer.configure(dial(party_number()))
    response = httpx.post(
        f"{plane.server.url}/v1/Account/{plane.account.auth_id}/Masking/Session/",
        json={"first_party": party_number(), "second_party": party_number()},
        auth=customer.auth,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Number pool exhausted or not available."
    assert virtual  # owned, so not allocated
