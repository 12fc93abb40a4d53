"""The journal page at GET /__admin/ (docs/behaviour.md#journal-page): an HTML shell with no
data, shipped in the package, and, in a real headless Chromium, what a person debugging a
client sees: requests newest first, refreshed by the page itself, a click showing the payload
and the signature doctor's verdict, the state beside them, and the token asked for once."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config
from mockserver.harness import MockServer
from tests.browser import Browser, chromium_or_skip
from tests.mockserver.conftest import ContractClient

PAGE = "/__admin/"
ROWS = "#requests tbody tr[data-id]"
# Set to a file name to keep the screenshot the first browser test takes (docs/journal-page.png
# was made so: DAPI_MOCK_PAGE_SCREENSHOT=docs/journal-page.png pytest -k journal_page).
SCREENSHOT_ENV = "DAPI_MOCK_PAGE_SCREENSHOT"


# -- the shell ----------------------------------------------------------------------------


def test_the_page_is_html_that_runs_only_its_own_script(client: ContractClient) -> None:
    response = client.admin("GET", "/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]+=*';", policy)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_shell_carries_no_data(client: ContractClient) -> None:
    before = client.admin("GET", "/").get_data()
    client.change_leverage("BTCUSD_PERP", 20)
    client.exchange.clock.freeze_at(1_700_000_000_000)
    after = client.admin("GET", "/").get_data()
    assert before == after
    assert DEMO_API_KEY.encode() not in after


def test_the_page_needs_nothing_from_the_network() -> None:
    page = files("mockserver").joinpath("data/journal.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=", page), "no external scripts, styles or links"
    assert "http://" not in page
    assert "https://" not in page
    assert "innerHTML" not in page, "data is shown as text only"


def test_the_package_ships_the_page() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"data/*.html"' in pyproject


def test_with_a_token_the_shell_answers_but_the_data_does_not(make_client) -> None:
    client = make_client(admin_token="s3cret")
    assert client.admin("GET", "/").status_code == 200
    assert client.admin("GET", "/state").status_code == 401
    assert client.admin("GET", "/requests").status_code == 401


# -- in a real browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with Browser(executable) as started:
        yield started


def signed_query(params: list[tuple[str, str]], signed_text: str | None = None) -> str:
    text = urlencode(params)
    digest = hmac.new(DEMO_SECRET.encode(), (signed_text or text).encode(), hashlib.sha256)
    return f"{text}&signature={digest.hexdigest()}"


def leverage_params(leverage: int) -> list[tuple[str, str]]:
    now = str(int(time.time() * 1000))
    return [("symbol", "BTCUSD_PERP"), ("leverage", str(leverage)), ("timestamp", now)]


def test_the_page_shows_requests_the_doctor_and_the_state(browser: Browser) -> None:
    with MockServer(Config(port=0)) as server:
        url = server.url
        mock = server.handle()
        mock.positions.seed("BTCUSD_PERP", "10", margin_type="isolated")
        mock.faults.add(
            {"match": {"method": "GET", "path": "/dapi/v1/time"}, "action": {"type": "drop"}}
        )
        browser.open(url + PAGE)
        browser.wait_for("document.getElementById('status').textContent.startsWith('refreshed')")
        headers = {"X-MBX-APIKEY": DEMO_API_KEY}

        # Sent after the page loaded: it must find them itself.
        ok = requests.post(
            f"{url}/dapi/v1/leverage?{signed_query(leverage_params(20))}",
            headers=headers,
            timeout=10,
        )
        assert ok.status_code == 200
        params = leverage_params(10)
        wrong = requests.post(
            f"{url}/dapi/v1/leverage?{signed_query(params, urlencode(sorted(params)))}",
            headers=headers,
            timeout=10,
        )
        assert wrong.json()["code"] == -1022
        requests.get(f"{url}/dapi/v1/<img src=x onerror=window.pwned=1>", timeout=10)
        requests.post(
            f"{url}/dapi/v1/leverage",
            data=b"<script>window.pwned=2</script>=1",
            headers=headers,
            timeout=10,
        )
        ids = [entry["id"] for entry in mock.requests()]
        assert len(ids) == 4

        shown = browser.wait_for(
            f"(() => {{ const r = [...document.querySelectorAll({json.dumps(ROWS)})];"
            f" return r.length >= 4 && r.map(e => Number(e.dataset.id)); }})()"
        )
        assert shown == sorted(ids, reverse=True), "newest first"
        assert browser.evaluate("window.pwned === undefined")
        assert (
            browser.evaluate("document.querySelectorAll('#requests img, main script').length") == 0
        )
        assert browser.evaluate(
            "[...document.querySelectorAll('#requests td')]"
            ".some(td => td.textContent.includes('<img src=x onerror=window.pwned=1>'))"
        ), "the hostile path is shown as text"

        browser.click(f'#requests tbody tr[data-id="{ids[1]}"]')
        detail = browser.wait_for(
            "(() => { const d = document.getElementById('detail');"
            " return !d.hidden && d.textContent.includes('Signature doctor') && d.innerText; })()"
        )
        assert "Signature doctor: it matches the parameters sorted by name" in detail
        assert f"symbol=BTCUSD_PERP&leverage=10&timestamp={params[2][1]}" in detail

        state = browser.wait_for(
            "(() => { const t = document.querySelector('aside').innerText;"
            " return t.includes('ISOLATED') && t; })()"
        )
        assert DEMO_API_KEY in state
        assert "one-way" in state
        assert "BTCUSD_PERP\t20\tISOLATED" in state
        assert "BTCUSD_PERP\tBOTH\t10" in state
        assert "rule 1: drop" in state
        assert "GET /dapi/v1/time" in state
        assert DEMO_SECRET not in browser.evaluate("document.body.innerText")

        screenshot = browser.screenshot()
        assert screenshot.startswith(b"\x89PNG")
        if os.environ.get(SCREENSHOT_ENV):
            Path(os.environ[SCREENSHOT_ENV]).write_bytes(screenshot)


def test_the_page_asks_for_the_token_once_and_sends_it(browser: Browser) -> None:
    with MockServer(Config(port=0, admin_token="s3cret")) as server:
        url = server.url
        browser.open(url + PAGE)
        browser.wait_for("document.getElementById('token-form').classList.contains('shown')")
        browser.click("#token")
        browser.type_text("s3cret")
        browser.press_enter()
        browser.wait_for("document.getElementById('status').textContent.startsWith('refreshed')")
        assert browser.evaluate("sessionStorage.getItem('dapi-mock-admin-token')") == "s3cret"

        requests.get(f"{url}/dapi/v1/ping", timeout=10)
        browser.wait_for(f"document.querySelectorAll({json.dumps(ROWS)}).length === 1")
        # Reloaded, the tab keeps the token and does not ask again.
        browser.open(url + PAGE)
        browser.wait_for(f"document.querySelectorAll({json.dumps(ROWS)}).length === 1")
        assert not browser.evaluate(
            "document.getElementById('token-form').classList.contains('shown')"
        )


# -- where no browser can be had ------------------------------------------------------------


def test_without_a_browser_or_apt_the_browser_tests_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="no Chromium and no apt-get"):
        chromium_or_skip()


def test_with_apt_but_no_browser_the_browser_tests_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        chromium_or_skip()
