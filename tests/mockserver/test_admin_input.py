"""What the control plane takes: bad bodies get 400, never a 500 (docs/behaviour.md#reliability)."""

from __future__ import annotations

import json

import pytest

from mockserver.json_input import JSONInputError, parse

FAULT = {
    "match": {"method": "GET", "path": "/dapi/v1/ping"},
    "action": {"type": "error", "status": 503, "code": -1001, "msg": "busy"},
}


def post_raw(client, path: str, body: bytes | str):
    data = body.encode() if isinstance(body, str) else body
    return client.request(
        "POST", f"/__admin{path}", body=data, content_type="application/json", api_key=None
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/faults", "[" * 100_000 + "]" * 100_000),
        ("/faults", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("/faults", '{"match":' + "[" * 40 + "]" * 40 + "}"),
        ("/accounts", '{"api_key": "abc", "secret": "\\ud800"}'),
        ("/accounts", '{"api_key": "abc", "secret": "x\\udfffy"}'),
        ("/faults", json.dumps({**FAULT, "action": {**FAULT["action"], "msg": "\ud800"}})),
        ("/faults", '{"\\ud800": 1}'),
        ("/clock", '{"offset_ms": NaN}'),
        ("/clock", '{"offset_ms": -Infinity}'),
        ("/clock", '{"advance_ms": 1' + "0" * 5000 + "}"),
        ("/accounts", b'{"api_key": "abc", "secret": "\xff"}'),
        ("/accounts", "\ufeff{}"),
        ("/accounts", ""),
        ("/accounts", "{"),
    ],
    ids=lambda v: v if len(v) < 30 else f"{v[:25]!r}...",
)
def test_unusable_json_is_400_with_a_reason(client, path, body):
    response = post_raw(client, path, body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert client.get("/dapi/v1/ping").status_code == 200
    assert client.exchange.unexpected_error_count == 0


def test_a_body_over_1_mib_is_413_whether_or_not_it_is_declared(client):
    body = json.dumps({"api_key": "abc", "secret": "s" * (1024 * 1024)})
    response = post_raw(client, "/accounts", body)
    assert response.status_code == 413
    assert "1048576" in response.get_json()["error"]


def test_a_body_of_almost_1_mib_is_read(client):
    body = json.dumps({**FAULT, "padding": " " * (1024 * 1024 - 200)})
    assert len(body) <= 1024 * 1024
    response = post_raw(client, "/faults", body)
    assert (response.status_code, response.get_json()["error"]) == (400, "unknown key(s): padding")


def test_the_parser_refuses_deep_nesting_below_pythons_limit() -> None:
    assert parse("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(JSONInputError, match="deeper than 3"):
        parse("[[[[]]]]", max_depth=3)
    with pytest.raises(JSONInputError, match="deeper than 3"):
        parse("[" * 500 + "]" * 500, max_depth=3)
