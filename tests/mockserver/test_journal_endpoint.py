"""GET/DELETE /__admin/requests: every exchange request, what it sent and why it was refused."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.config import DEMO_API_KEY
from tests.helpers import FROZEN_MS, hmac_hex, signed

PATH = "/dapi/v1/leverage"
FIELDS = [
    "id",
    "time_ms",
    "method",
    "path",
    "query",
    "body",
    "api_key",
    "status",
    "code",
    "fault",
    "reason",
]


def journal(client) -> list[dict[str, Any]]:
    response = client.admin("GET", "/requests")
    assert response.status_code == 200
    data = response.get_json()
    assert list(data) == ["requests", "last_id"]
    return data["requests"]


def last_entry(client) -> dict[str, Any]:
    return journal(client)[-1]


def test_a_request_is_journaled_with_every_field(client):
    query = "symbol=BTCUSD_PERP&leverage=25"
    body = f"timestamp={FROZEN_MS}"
    body += f"&signature={hmac_hex(query + body)}"
    assert client.post(PATH, query, body).status_code == 200
    (entry,) = journal(client)
    assert list(entry) == FIELDS
    assert entry == {
        "id": 1,
        "time_ms": FROZEN_MS,
        "method": "POST",
        "path": PATH,
        "query": query,
        "body": body,
        "api_key": DEMO_API_KEY,
        "status": 200,
        "code": None,
        "fault": None,
        "reason": None,
    }


def test_entries_come_oldest_first_with_increasing_ids(client):
    client.get("/dapi/v1/ping")
    client.exchange.clock.advance(5)
    client.get("/dapi/v1/time", api_key=None)
    client.exchange.clock.advance(5)
    client.change_leverage("BTCUSD_PERP", 30)
    entries = journal(client)
    assert [(e["id"], e["path"], e["time_ms"]) for e in entries] == [
        (1, "/dapi/v1/ping", FROZEN_MS),
        (2, "/dapi/v1/time", FROZEN_MS + 5),
        (3, PATH, FROZEN_MS + 10),
    ]
    assert entries[1]["api_key"] is None  # no header sent


def test_query_and_body_are_kept_as_received_not_reencoded(client):
    query = "symbol=BTCUSD_PERP&note=a%2Fb+c"
    client.post(PATH, query, "x=%41")
    entry = last_entry(client)
    assert (entry["query"], entry["body"]) == (query, "x=%41")


def test_undecodable_bytes_are_journaled_as_replacement_characters(client):
    client.post(PATH, "", b"symbol=\xff\xfe")
    entry = last_entry(client)
    assert entry["body"] == "symbol=\ufffd\ufffd"
    assert entry["code"] == -1100


def test_a_long_body_is_cut_at_4_kib(client):
    body = "note=" + "x" * 5000
    client.post(PATH, "", body)
    assert last_entry(client)["body"] == body[:4096]


def test_a_body_over_max_body_bytes_is_journaled_empty_with_the_reason(make_client):
    client = make_client(max_body_bytes=100)
    client.post(PATH, "", "a=" + "x" * 200)
    entry = last_entry(client)
    assert (entry["status"], entry["code"], entry["body"]) == (413, -1101, "")
    assert entry["reason"] == "body is over max_body_bytes (100)"


def test_the_api_key_is_journaled_as_sent_even_when_unknown(client):
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 20, "timestamp": FROZEN_MS})
    client.post(PATH, query, api_key="nosuchkey")
    entry = last_entry(client)
    assert (entry["api_key"], entry["status"], entry["code"]) == ("nosuchkey", 401, -2015)
    assert entry["reason"] == "no account has this API key"


# -- rejection reasons, in words ---------------------------------------------------------


def test_a_bad_signature_names_the_payload_that_was_checked(client):
    payload = f"symbol=BTCUSD_PERP&leverage=20&timestamp={FROZEN_MS}"
    client.post(PATH, f"{payload}&signature={hmac_hex(payload, 'wrongsecret')}")
    entry = last_entry(client)
    assert (entry["status"], entry["code"]) == (400, -1022)
    assert entry["reason"] == f"hmac signature does not match: payload was {payload!r}"


def test_a_split_payload_is_shown_as_query_then_body(client):
    query, body = "symbol=BTCUSD_PERP&leverage=20", f"timestamp={FROZEN_MS}"
    client.post(PATH, query, f"{body}&signature={hmac_hex(body + query)}")
    reason = last_entry(client)["reason"]
    assert reason == f"hmac signature does not match: payload was {query + body!r}"


@pytest.mark.parametrize(
    ("send", "code", "reason"),
    [
        (
            lambda c: c.change_leverage("BTCUSD_PERP", 20, timestamp=FROZEN_MS - 60_000),
            -1021,
            f"timestamp {FROZEN_MS - 60_000} is 60000 ms behind server time {FROZEN_MS}, "
            "recvWindow is 5000",
        ),
        (
            lambda c: c.change_leverage("BTCUSD_PERP", 20, timestamp=FROZEN_MS + 2000),
            -1021,
            f"timestamp {FROZEN_MS + 2000} is 2000 ms ahead of server time {FROZEN_MS}",
        ),
        (
            lambda c: c.post(PATH, signed({"symbol": "BTCUSD_PERP"}), api_key=None),
            -2014,
            "X-MBX-APIKEY header missing or empty",
        ),
        (
            lambda c: c.post(PATH, f"symbol=BTCUSD_PERP&timestamp={FROZEN_MS}"),
            -1102,
            "signature not sent or empty",
        ),
        (
            lambda c: c.post(PATH, signed({"symbol": "BTCUSD_PERP", "timestamp": FROZEN_MS})),
            -1102,
            "leverage not sent or empty",
        ),
        (
            lambda c: c.change_leverage("BTCUSD_PERP", "2x"),
            -1102,
            "leverage '2x' is not an integer",
        ),
        (
            lambda c: c.change_leverage("BTCUSD_PERP", 20, recvWindow="-1"),
            -1130,
            "recvWindow '-1' is not a LONG >= 0",
        ),
        (
            lambda c: c.change_leverage("XRPUSD_PERP", 20),
            -1121,
            "symbol 'XRPUSD_PERP' is not listed now",
        ),
        (
            lambda c: c.change_leverage("BTCUSD_PERP", 126),
            -4028,
            "BTCUSD_PERP takes leverage 1 to 125",
        ),
        (lambda c: c.post(PATH, "leverage=1&leverage=2"), -1101, "parameter 'leverage' sent twice"),
        (
            lambda c: c.change_leverage("btcusd_perp", 20),
            -1100,
            "symbol 'btcusd_perp' does not match ^[A-Z0-9-_.]{1,20}$",
        ),
        (lambda c: c.get("/dapi/v1/nothing"), -5000, "no such path"),
        (lambda c: c.get(PATH), -5000, "method not allowed on this path"),
    ],
)
def test_each_rejection_is_journaled_with_its_reason(client, send, code, reason):
    send(client)
    entry = last_entry(client)
    assert entry["code"] == code
    assert entry["reason"].startswith(reason)
    assert entry["fault"] is None


def test_the_rate_limit_reasons_say_what_was_passed(make_client):
    client = make_client(weight_per_minute=1)
    for _ in range(3):
        client.get("/dapi/v1/ping")
    _, too_many, banned = journal(client)
    assert (too_many["status"], too_many["code"]) == (429, -1003)
    assert too_many["reason"] == "weight 1+1 would pass the limit of 1/minute"
    assert (banned["status"], banned["code"]) == (418, -1003)
    assert banned["reason"] == "IP 127.0.0.1 sent a request before its Retry-After ran out: banned"


def test_an_unexpected_exception_is_journaled_as_500_with_its_type(client, monkeypatch):
    def explode(*args: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(client.exchange.store, "change_leverage", explode)
    client.change_leverage("BTCUSD_PERP", 20)
    entry = last_entry(client)
    assert (entry["status"], entry["code"]) == (500, -1000)
    assert entry["reason"] == "RuntimeError: injected failure"


# -- what is not journaled; size; clearing -----------------------------------------------


def test_admin_calls_and_the_contract_are_not_journaled(client):
    client.admin("GET", "/health")
    client.admin("GET", "/clock")
    client.get("/openapi.yaml")
    assert journal(client) == []


def test_the_journal_keeps_the_newest_journal_size_entries(make_client):
    client = make_client(journal_size=3)
    for _ in range(5):
        client.get("/dapi/v1/ping")
    assert [e["id"] for e in journal(client)] == [3, 4, 5]


def test_delete_clears_the_journal_and_ids_keep_counting(client):
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    response = client.admin("DELETE", "/requests")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert journal(client) == []
    client.get("/dapi/v1/time")
    assert [e["id"] for e in journal(client)] == [3]


def test_reset_clears_the_journal(client):
    client.get("/dapi/v1/ping")
    client.admin("POST", "/reset")
    assert journal(client) == []


def test_the_live_handle_reads_and_clears_the_journal(dapi_mock):
    import requests

    requests.get(f"{dapi_mock.url}/dapi/v1/ping", timeout=5)
    (entry,) = dapi_mock.requests()
    assert (entry["path"], entry["status"], entry["api_key"]) == ("/dapi/v1/ping", 200, None)
    dapi_mock.clear_requests()
    assert dapi_mock.requests() == []


# -- ids reserved when a handler ran (journal order = the order state changed) ------------


def test_an_entry_with_a_reserved_id_takes_its_place_in_id_order():
    from mockserver.journal import Journal

    journal = Journal(10)
    early = journal.reserve()
    journal.record({"path": "/later"})
    journal.record({"path": "/early"}, early)
    assert [(e["id"], e["path"]) for e in journal.entries()] == [(1, "/early"), (2, "/later")]


def test_a_late_entry_older_than_everything_kept_drops_out_of_a_full_journal():
    from mockserver.journal import Journal

    journal = Journal(2)
    early = journal.reserve()
    middle = journal.reserve()
    journal.record({"path": "/a"})
    journal.record({"path": "/b"})
    journal.record({"path": "/middle"}, middle)  # older than everything kept: dropped
    journal.record({"path": "/early"}, early)
    assert [e["path"] for e in journal.entries()] == ["/a", "/b"]
    journal.record({"path": "/c"})
    assert [(e["id"], e["path"]) for e in journal.entries()] == [(4, "/b"), (5, "/c")]


def test_an_entry_reserved_before_a_clear_is_not_kept_after_it():
    """A reset clears the journal and the state a request changed: its late entry goes too."""
    from mockserver.journal import Journal

    journal = Journal(10)
    before_reset = journal.reserve()
    journal.clear()
    journal.record({"path": "/before-reset"}, before_reset)
    journal.record({"path": "/after-reset"})
    assert [e["path"] for e in journal.entries()] == ["/after-reset"]


# -- bounded in bytes, paged (docs/behaviour.md#journal) ----------------------------------


def test_a_long_path_and_api_key_are_journaled_cut_to_their_sizes(client):
    client.get("/dapi/v1/" + "x" * 100_000, api_key="k" * 500)
    entry = last_entry(client)
    assert (len(entry["path"]), len(entry["api_key"])) == (1024, 64)
    assert entry["path"].startswith("/dapi/v1/xxx")


def test_since_id_and_limit_page_the_journal_and_last_id_resumes(client):
    for _ in range(5):
        client.get("/dapi/v1/ping")
    page = client.admin("GET", "/requests?since_id=1&limit=2").get_json()
    assert ([e["id"] for e in page["requests"]], page["last_id"]) == ([4, 5], 5)
    client.get("/dapi/v1/time")
    page = client.admin("GET", f"/requests?since_id={page['last_id']}").get_json()
    assert ([e["path"] for e in page["requests"]], page["last_id"]) == (["/dapi/v1/time"], 6)


def test_an_empty_journal_answers_last_id_zero(client):
    assert client.admin("GET", "/requests").get_json() == {"requests": [], "last_id": 0}


@pytest.mark.parametrize(
    "query",
    [
        "since_id=-1",
        "since_id=abc",
        "since_id=1.5",
        "since_id=",
        "since_id=%201",
        "since_id=99999999999999999999",
        "limit=0",
        "limit=10001",
        "limit=",
        "limit=%EF%BC%91",  # a full-width digit
    ],
)
def test_bad_paging_values_are_400(client, query):
    response = client.admin("GET", f"/requests?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"].split()[0] in ("since_id", "limit")


def test_limit_takes_its_whole_range(client):
    client.get("/dapi/v1/ping")
    for limit in (1, 10000):
        assert len(client.admin("GET", f"/requests?limit={limit}").get_json()["requests"]) == 1
