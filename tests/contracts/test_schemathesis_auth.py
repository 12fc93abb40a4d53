"""The auth probes of `contracts.schemathesis_auth`, sent to the live mock."""

from __future__ import annotations

import time

import pytest
import requests

from contracts.schemathesis_auth import API_KEY_HEADER, auth_probes
from contracts.signing import HmacAuth
from mockserver.config import DEMO_API_KEY, DEMO_SECRET

SIGNER = HmacAuth(DEMO_API_KEY, DEMO_SECRET)


@pytest.mark.parametrize("signature_in", ["query", "body"])
def test_each_probe_is_answered_with_its_code(dapi_mock, signature_in):
    # With the parameters in the query and only the signature in the body, several probes
    # send no body at all: the original request's Content-Length must not go with them,
    # or the server waits for a body that never comes.
    query = f"symbol=BTCUSD_PERP&leverage=5&timestamp={int(time.time() * 1000)}"
    signature = f"signature={SIGNER.signature(query.encode())}"
    url = f"{dapi_mock.url}/dapi/v1/leverage?{query}"
    original = requests.Request(
        "POST",
        f"{url}&{signature}" if signature_in == "query" else url,
        data=signature if signature_in == "body" else None,
        headers={API_KEY_HEADER: DEMO_API_KEY},
    ).prepare()
    assert requests.Session().send(original, timeout=5).status_code == 200
    for what, headers, probe_url, body, status, code in auth_probes(original, SIGNER):
        answer = requests.post(probe_url, headers=headers, data=body or None, timeout=5)
        assert (answer.status_code, answer.json()["code"]) == (status, code), what
