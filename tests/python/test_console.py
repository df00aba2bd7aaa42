"""The console in a real browser (headless Chromium through Selenium) while a gray failure runs
through the gateway: the slow target's circuit shows open, the fallback rate is non-zero, the
newest request fell back over two attempts, and the page loads nothing from elsewhere and logs
no error."""

import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import BINARY, PROVIDER_KEY, free_port, wait_http
from console_browser import chromium_available, post_chat, start_browser

# The primary answers after 3 s; the config gives it 300 ms (a gray failure). After 4 such calls
# its circuit opens for two minutes and requests go straight to the secondary.
CONFIG = """
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  primary: {{ kind: openai-compatible, base_url: "http://{mock}/fault/headers_delay_ms=3000/v1", api_key: {key} }}
  secondary: {{ kind: openai-compatible, base_url: "http://{mock}/v1", api_key: {key} }}
virtual_keys:
  vk-primary: {{ provider: primary }}
  vk-secondary: {{ provider: secondary }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    request_timeout: 300
    circuit_breaker: {{ min_calls: 4, window_s: 30, open_s: 120 }}
    targets:
      - virtual_key: vk-primary
        override_params: {{ model: gpt-4o-mini }}
      - virtual_key: vk-secondary
        override_params: {{ model: gpt-4o-mini }}
"""


TARGET_JS = """
const r = document.querySelector(arguments[0]);
if (!r) return null;
return {circuit: r.dataset.circuit,
        circuit_text: r.querySelector('[data-field="circuit"]').textContent,
        timeouts: r.querySelector('[data-field="timeouts"]').textContent};
"""
CONFIG_JS = """
const r = document.querySelector(arguments[0]);
if (!r) return null;
return {rate: r.dataset.fallbackRate,
        text: r.querySelector('[data-field="fallback_rate"]').textContent,
        spark: r.querySelectorAll('svg.spark').length};
"""
REQUESTS_JS = """
return [...document.querySelectorAll('#requests-body tr[data-id]')].map(r => ({
  id: Number(r.dataset.id), outcome: r.dataset.outcome, attempts: Number(r.dataset.attempts),
  chips: [...r.querySelectorAll('.chip')].map(c => c.dataset.result)}));
"""


@pytest.fixture()
def gray_gateway(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(CONFIG.format(listen=listen, admin=admin, mock=mock_provider, key=PROVIDER_KEY))
        proc = subprocess.Popen(
            [str(BINARY), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://{admin}/readyz")
            yield {"base": f"http://{listen}", "admin": f"http://{admin}"}
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


@pytest.fixture()
def browser():
    assert chromium_available(), "chromium and chromedriver are installed by scripts/test"
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, check, timeout=30):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: check(d), message=f"the console never showed {what}"
    )


def test_the_console_shows_a_gray_failure_as_it_happens(gray_gateway, browser):
    admin = gray_gateway["admin"]
    browser.get(admin + "/")
    wait_for(browser, "a live stream", lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")

    for _ in range(8):
        assert post_chat(gray_gateway["base"], "chat") == 200

    # Rows are rebuilt with every frame: read them in one script call each time.
    primary = '#targets-body tr[data-config="chat"][data-target="config.targets[0]"]'
    target = lambda d: d.execute_script(TARGET_JS, primary)
    wait_for(browser, "the primary's circuit open", lambda d: (target(d) or {}).get("circuit") == "open")
    shown = target(browser)
    assert "half-open in" in shown["circuit_text"], shown
    assert shown["timeouts"] == "4", shown

    chat = '#configs-body tr[data-config="chat"]'
    config_row = lambda d: d.execute_script(CONFIG_JS, chat)
    wait_for(browser, "a non-zero fallback rate", lambda d: float((config_row(d) or {}).get("rate") or 0) > 0)
    shown = config_row(browser)
    assert shown["text"].endswith("%") and shown["spark"], shown

    requests = lambda d: d.execute_script(REQUESTS_JS)
    wait_for(browser, "all eight requests", lambda d: len(requests(d)) == 8)
    rows = requests(browser)
    newest = rows[0]
    assert newest["outcome"] == "fallback_ok", rows
    assert newest["attempts"] == 2, rows
    assert newest["chips"] == ["circuit_open", "ok"], rows
    assert rows[-1]["chips"] == ["timeout_headers", "ok"], rows
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids, reverse=True), "newest first"

    # Clicking a request shows its attempts as a timeline.
    for _ in range(10):
        try:
            browser.find_element(By.CSS_SELECTOR, f'#requests-body tr[data-id="{ids[-1]}"]').click()
            break
        except StaleElementReferenceException:
            continue
    assert browser.find_element(By.ID, "detail").is_displayed()
    assert browser.find_element(By.ID, "detail").get_attribute("data-id") == str(ids[-1])
    bars = browser.find_elements(By.CSS_SELECTOR, "#timeline .attempt")
    assert [b.get_attribute("data-result") for b in bars] == ["timeout_headers", "ok"]

    # The filter keeps only the chosen outcome.
    Select(browser.find_element(By.ID, "outcome-filter")).select_by_value("error")
    assert requests(browser) == []
    Select(browser.find_element(By.ID, "outcome-filter")).select_by_value("fallback_ok")
    assert len(requests(browser)) == 8

    assert browser.find_element(By.ID, "config-hash").text != "–"

    # Nothing came from anywhere but the admin port.
    origin = urlparse(admin)
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat(performance.getEntriesByType('navigation').map(e => e.name))"
    )
    assert names, "the page loaded its files"
    for name in names:
        u = urlparse(name)
        assert (u.scheme, u.netloc) == (origin.scheme, origin.netloc), name
    # And nothing went wrong on the page.
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors

    screenshot = os.environ.get("SWITCHYARD_CONSOLE_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(screenshot)


def test_the_viewer_count_returns_to_zero_when_the_page_closes(gray_gateway, browser):
    admin = gray_gateway["admin"]

    def gauge(name):
        import urllib.request

        with urllib.request.urlopen(admin + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        return None

    browser.get(admin + "/")
    wait_for(browser, "a live stream", lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
    assert gauge("switchyard_console_viewers") == 1
    browser.get("about:blank")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if gauge("switchyard_console_viewers") == 0 and gauge("switchyard_console_sampling") == 0:
            break
        time.sleep(0.2)
    assert gauge("switchyard_console_viewers") == 0
    assert gauge("switchyard_console_sampling") == 0
