"""Veil's Webhook resource and ``/metrics``, against a real ``veil serve`` whose own
sweeper and delivery worker send SessionTimeout callbacks to a real HTTP receiver.

One scenario per database: sessions of a main account, its subaccount and another
account, with callbacks that succeed (200), fail for good (404) and succeed on a retry
(503, then 200). Their expiry is backdated; the server's sweeper writes the callbacks and
its worker delivers them. The tests then read the outcome through the API and the
metrics. Each database is new, so the metrics count only this scenario.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.sdk_support import create, expire_by_time, parse_plivo_time, sdk_client
from tests.servers import BACKENDS, Server, database, veil_server
from tests.utils import Admin, LoopThread
from tests.webhooks.receiver import Received, Receiver
from veil.domain import messages
from veil.domain.accounts import Account

SETTLE_DEADLINE = 30.0  # seconds for the sweeper (every 1 s) and the worker to finish
OBJECT_KEYS = {
    "event_id",
    "event",
    "session_uuid",
    "sequence",
    "url",
    "method",
    "status",
    "attempts",
    "last_error",
    "created_time",
    "delivered_time",
    "next_attempt_time",
    "subaccount",
    "resource_uri",
}
ATTEMPT_KEYS = {"attempt", "time", "url", "status_code", "error", "duration_ms"}


def respond(request: Received) -> tuple[int, dict[str, str]]:
    """/ok: 200; /gone: 404 (permanent); /flaky: 503 the first time, then 200."""
    if request.path == "/gone":
        return 404, {}
    if request.path == "/flaky" and request.event_id not in _failed_once:
        _failed_once.add(request.event_id)
        return 503, {}
    return 200, {}


_failed_once: set[str] = set()  # event ids /flaky has answered 503


@dataclass
class Scenario:
    server: Server
    receiver: Receiver
    main: Account
    sub: Account
    other: Account
    sessions: dict[str, str]  # name -> session_uuid
    event_ids: dict[str, str]  # name -> EventId, as the receiver got it


@pytest.fixture(scope="module", params=BACKENDS)
def hooks_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database(request.param, tmp_path_factory.mktemp("webhooks-api")) as url:
        yield url


@pytest.fixture(scope="module")
def hooks_server(hooks_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir: Path = tmp_path_factory.mktemp("webhooks-server")
    with veil_server(hooks_url, workdir, VEIL_SIP_LISTEN="off") as running:
        yield running


@pytest.fixture(scope="module")
def scenario(hooks_url: str, hooks_server: Server, loop_thread: LoopThread) -> Iterator[Scenario]:
    admin = Admin(hooks_url, loop_thread)
    try:
        with Receiver(respond=respond) as receiver:
            yield _play(admin, hooks_server, receiver)
    finally:
        admin.close()


def _play(admin: Admin, server: Server, receiver: Receiver) -> Scenario:
    main = admin.create_account("Hooks")
    sub = admin.create_account("Hooks sub", parent=main)
    other = admin.create_account("Other")
    admin.add_numbers(main, 3)
    admin.add_numbers(main, 1, subaccount=sub)
    admin.add_numbers(other, 1)
    plan: list[tuple[str, Account, dict[str, str]]] = [
        ("ok", main, {"callback_url": receiver.url("/ok")}),
        ("gone", main, {"callback_url": receiver.url("/gone"), "callback_method": "GET"}),
        ("flaky", main, {"callback_url": receiver.url("/flaky")}),
        ("quiet", main, {}),  # no callback_url: nothing to deliver
        ("sub", sub, {"callback_url": receiver.url("/ok")}),
        ("other", other, {"callback_url": receiver.url("/ok")}),
    ]
    sessions: dict[str, str] = {}
    for name, owner, params in plan:
        created = create(sdk_client(server.url, owner), **params)
        sessions[name] = created.session_uuid
    for session_uuid in sessions.values():
        expire_by_time(admin, session_uuid)

    delivered = {sessions[n] for n in ("ok", "flaky", "sub", "other")}

    def settled(r: Receiver) -> bool:
        answered = {(q.params.get("SessionUUID"), q.status) for q in r.requests}
        return (
            all((s, 200) in answered for s in delivered)
            and (
                sessions["gone"],
                404,
            )
            in answered
        )

    receiver.wait_for(settled, SETTLE_DEADLINE)
    # The worker settles a row just after the answer: wait (bounded) for that write.
    deadline = time.monotonic() + SETTLE_DEADLINE
    while admin.sql("SELECT count(*) FROM outbox WHERE status = 'pending'")[0][0]:
        assert time.monotonic() < deadline, "outbox rows still pending"
        time.sleep(0.05)
    by_session = {v: k for k, v in sessions.items()}
    event_ids = {by_session[q.params["SessionUUID"]]: q.event_id for q in receiver.requests}
    return Scenario(server, receiver, main, sub, other, sessions, event_ids)


def api(scenario: Scenario, account: Account, path: str = "", **params: Any) -> httpx.Response:
    return httpx.get(
        f"{scenario.server.url}/v1/Account/{account.auth_id}/Webhook/{path}",
        params=params,
        auth=(account.auth_id, account.auth_token),
        timeout=10,
    )


def listed(scenario: Scenario, account: Account, **params: Any) -> dict[str, Any]:
    response = api(scenario, account, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_name(scenario: Scenario, objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in scenario.sessions.items()}
    return {names[o["session_uuid"]]: o for o in objects}


# The list ---------------------------------------------------------------------------------


def test_list_shows_the_tree_newest_first(scenario: Scenario) -> None:
    body = listed(scenario, scenario.main)
    assert set(body) == {"api_id", "meta", "objects"}
    assert body["meta"] == {
        "count": 4,
        "total_count": 4,
        "limit": 20,
        "offset": 0,
        "next": None,
        "previous": None,
    }
    objects = body["objects"]
    assert all(set(o) == OBJECT_KEYS for o in objects)
    found = by_name(scenario, objects)
    assert set(found) == {"ok", "gone", "flaky", "sub"}  # the subaccount's too, not "other"
    created = [parse_plivo_time(o["created_time"]) for o in objects]
    assert created == sorted(created, reverse=True)

    auth_id = scenario.main.auth_id
    receiver = scenario.receiver
    ok = found["ok"]
    assert ok == {
        "event_id": scenario.event_ids["ok"],
        "event": "SessionTimeout",
        "session_uuid": scenario.sessions["ok"],
        "sequence": 1,
        "url": receiver.url("/ok"),
        "method": "POST",
        "status": "delivered",
        "attempts": 1,
        "last_error": None,
        "created_time": ok["created_time"],
        "delivered_time": ok["delivered_time"],
        "next_attempt_time": None,
        "subaccount": "",
        "resource_uri": f"/v1/Account/{auth_id}/Webhook/{scenario.event_ids['ok']}/",
    }
    assert parse_plivo_time(ok["delivered_time"]) >= parse_plivo_time(ok["created_time"])

    gone = found["gone"]
    assert (gone["status"], gone["attempts"], gone["last_error"]) == ("dead", 1, "HTTP 404")
    assert (gone["method"], gone["delivered_time"], gone["next_attempt_time"]) == (
        "GET",
        None,
        None,
    )
    flaky = found["flaky"]
    assert (flaky["status"], flaky["attempts"], flaky["last_error"]) == ("delivered", 2, None)
    assert found["sub"]["subaccount"] == scenario.sub.auth_id


def test_list_filters(scenario: Scenario) -> None:
    def names(**params: Any) -> set[str]:
        return set(by_name(scenario, listed(scenario, scenario.main, **params)["objects"]))

    assert names(status="dead") == {"gone"}
    assert names(status="delivered") == {"ok", "flaky", "sub"}
    assert names(status="pending") == set()
    assert names(status="all") == {"ok", "gone", "flaky", "sub"}
    assert names(session_uuid=scenario.sessions["flaky"]) == {"flaky"}
    assert names(session_uuid=scenario.sessions["other"]) == set()  # not this account's
    assert names(session_uuid=scenario.sessions["quiet"]) == set()  # sent nothing
    assert names(session_uuid="not-a-uuid") == set()
    assert names(event="SessionTimeout") == {"ok", "gone", "flaky", "sub"}
    assert names(event="SessionPartiesHangup") == set()
    assert names(subaccount=scenario.sub.auth_id) == {"sub"}
    assert names(subaccount=scenario.sub.auth_id, status="dead") == set()

    bad = api(scenario, scenario.main, status="lost")
    assert bad.status_code == 400
    assert bad.json()["error"] == messages.not_one_of("status", "pending, delivered, dead or all")
    foreign = api(scenario, scenario.main, subaccount=scenario.other.auth_id)
    assert (foreign.status_code, foreign.json()["error"]) == (400, messages.SUBACCOUNT_NOT_FOUND)
    limit = api(scenario, scenario.main, limit=21)
    assert (limit.status_code, limit.json()["error"]) == (400, messages.LIMIT_RANGE)


def test_list_pages(scenario: Scenario) -> None:
    base = f"{scenario.server.url}/v1/Account/{scenario.main.auth_id}/Webhook/"
    first = listed(scenario, scenario.main, limit=2, status="delivered")
    assert first["meta"]["total_count"] == 3
    assert first["meta"]["next"] == base + "?status=delivered&limit=2&offset=2"
    assert first["meta"]["previous"] is None
    second = listed(scenario, scenario.main, limit=2, offset=2, status="delivered")
    assert second["meta"]["next"] is None
    assert second["meta"]["previous"] == base + "?status=delivered&limit=2&offset=0"
    seen = [o["event_id"] for o in first["objects"] + second["objects"]]
    assert sorted(seen) == sorted(scenario.event_ids[n] for n in ("ok", "flaky", "sub"))


# One delivery -----------------------------------------------------------------------------


def test_get_shows_the_attempt_history(scenario: Scenario) -> None:
    receiver = scenario.receiver
    response = api(scenario, scenario.main, scenario.event_ids["flaky"] + "/")
    assert response.status_code == 200, response.text
    flaky = response.json()
    assert set(flaky) == OBJECT_KEYS | {"api_id", "attempt_history"}
    assert (flaky["status"], flaky["attempts"]) == ("delivered", 2)
    history = flaky["attempt_history"]
    assert all(set(a) == ATTEMPT_KEYS for a in history)
    assert [(a["attempt"], a["url"], a["status_code"], a["error"]) for a in history] == [
        (1, receiver.url("/flaky"), 503, None),
        (2, receiver.url("/flaky"), 200, None),
    ]
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in history)
    times = [parse_plivo_time(a["time"]) for a in history]
    assert times == sorted(times)

    gone = api(scenario, scenario.main, scenario.event_ids["gone"]).json()  # no slash: fine
    assert (gone["status"], gone["last_error"]) == ("dead", "HTTP 404")
    assert [(a["attempt"], a["status_code"]) for a in gone["attempt_history"]] == [(1, 404)]
    listed_gone = by_name(scenario, listed(scenario, scenario.main)["objects"])["gone"]
    assert {k: gone[k] for k in OBJECT_KEYS} == listed_gone


# Scoping ----------------------------------------------------------------------------------


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == messages.RESOURCE_NOT_FOUND
    assert isinstance(body["api_id"], str) and body["api_id"]


def test_scoped_like_sessions(scenario: Scenario) -> None:
    ids = scenario.event_ids
    # A subaccount sees its own only.
    own = listed(scenario, scenario.sub)
    assert [o["event_id"] for o in own["objects"]] == [ids["sub"]]
    sub_uri = f"/v1/Account/{scenario.sub.auth_id}/Webhook/{ids['sub']}/"
    assert own["objects"][0]["resource_uri"] == sub_uri
    assert api(scenario, scenario.sub, ids["sub"] + "/").status_code == 200
    assert_not_found(api(scenario, scenario.sub, ids["ok"] + "/"))
    # A main account sees its subaccount's.
    assert api(scenario, scenario.main, ids["sub"] + "/").json()["subaccount"] == (
        scenario.sub.auth_id
    )
    # Another account sees none of them, and they none of its.
    other = listed(scenario, scenario.other)
    assert [o["event_id"] for o in other["objects"]] == [ids["other"]]
    for name in ("ok", "gone", "sub"):
        assert_not_found(api(scenario, scenario.other, ids[name] + "/"))
    assert_not_found(api(scenario, scenario.main, ids["other"] + "/"))
    assert_not_found(api(scenario, scenario.main, str(uuid.uuid4()) + "/"))
    assert_not_found(api(scenario, scenario.main, "nonsense/"))
    # Credentials as everywhere else.
    wrong = httpx.get(
        f"{scenario.server.url}/v1/Account/{scenario.main.auth_id}/Webhook/",
        auth=(scenario.main.auth_id, "wrong"),
        timeout=10,
    )
    assert wrong.status_code == 401
    crossed = httpx.get(
        f"{scenario.server.url}/v1/Account/{scenario.main.auth_id}/Webhook/",
        auth=(scenario.other.auth_id, scenario.other.auth_token),
        timeout=10,
    )
    assert (crossed.status_code, crossed.json()["error"]) == (401, messages.AUTH_ID_MISMATCH)


# Metrics ----------------------------------------------------------------------------------


def parse_exposition(text: str) -> tuple[dict[str, str], dict[str, float]]:
    """Prometheus text format: the TYPE of each family, and each sample by its name with
    labels (``name{a="b"}``) as written."""
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4
        else:
            key, _, value = line.rpartition(" ")
            family = key.partition("{")[0]
            assert family in types or family.rsplit("_", 1)[0] in types, line
            samples[key] = float(value)
    return types, samples


def test_metrics(scenario: Scenario) -> None:
    response = httpx.get(scenario.server.url + "/metrics", timeout=10)  # no credentials
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_exposition(response.text)
    assert types["veil_webhook_deliveries_total"] == "counter"
    assert types["veil_webhook_retries_total"] == "counter"
    assert types["veil_webhook_delivery_latency_seconds"] == "summary"
    # ok, flaky, sub and other delivered; gone dead; flaky's one retry.
    assert samples['veil_webhook_deliveries_total{status="delivered"}'] == 4
    assert samples['veil_webhook_deliveries_total{status="dead"}'] == 1
    assert samples["veil_webhook_retries_total"] == 1
    assert samples["veil_webhook_queue_depth"] == 0
    assert samples["veil_webhook_queue_due"] == 0
    assert samples["veil_webhook_oldest_pending_seconds"] == 0
    latency = "veil_webhook_delivery_latency_seconds"
    assert samples[f"{latency}_count"] == 4
    quantiles = [samples[f'{latency}{{quantile="{q}"}}'] for q in ("0.5", "0.9", "0.99")]
    assert all(math.isfinite(q) and q >= 0 for q in quantiles)
    assert quantiles == sorted(quantiles)
    assert quantiles[-1] <= samples[f"{latency}_sum"]
    assert any(key.startswith("veil_build_info{version=") for key in samples)
