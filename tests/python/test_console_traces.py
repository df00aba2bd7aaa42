"""The console's Traces and Analytics views (issue 20) in a real browser (headless Chromium
through Selenium), against the real gateway with its request store on (SQLite in a temp dir),
after the seed's traced support session: two `/v1/messages` turns under one
`x-portkey-trace-id` with `x-portkey-metadata` (user_id, session_id, feature), feedback +1 after
turn 1 and -1 after turn 2, plus one unrelated request from another user. Searching by
`user_id` metadata finds the session and only it; its trace lists both turns oldest first with
their feedback, metadata and attempts; the analytics view grouped by `metadata.feature` counts
the session's two requests. The page loads nothing from another origin and logs no error. With
the store off, each view says so and the live view still works."""

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import BINARY, PROVIDER_KEY, free_port, wait_http
from console_browser import chromium_available, foreign_requests, page_errors, start_browser

# The seed's production config: Claude Sonnet first, a fallback after it. Here the primary is
# always overloaded (529), so every turn falls back and its attempts timeline has two bars.
CONFIG = """
listen: {listen}
admin_listen: {admin}
threads: 1
{store}
providers:
  anthropic-overloaded: {{ kind: anthropic, base_url: "http://{mock}/fault/status=529", api_key: {key} }}
  anthropic: {{ kind: anthropic, base_url: "http://{mock}", api_key: {key} }}
virtual_keys:
  anthropic-prod-vk-abc123: {{ provider: anthropic }}
  anthropic-overloaded-vk: {{ provider: anthropic-overloaded }}
configs:
  pc-prod-fallback-abc:
    strategy: {{ mode: fallback }}
    targets:
      - virtual_key: anthropic-overloaded-vk
        override_params: {{ model: claude-sonnet-4-6 }}
      - virtual_key: anthropic-prod-vk-abc123
        override_params: {{ model: claude-haiku-4-5 }}
"""

USER = "user_8821"
SESSION = f"sess_{int(time.time())}"
TRACE = f"support-chat-{SESSION}"
OTHER_TRACE = f"docs-search-sess_{int(time.time())}"
COMMENTS = {1: "Clear and actionable advice", -1: "Missed firewall/pg_hba.conf angle"}


@contextmanager
def running_gateway(mock, store: bool):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        store_yaml = f"store: {{ path: {json.dumps(str(Path(tmp) / 'requests.db'))} }}" if store else ""
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(CONFIG.format(listen=listen, admin=admin, mock=mock, key=PROVIDER_KEY, store=store_yaml))
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


def post_json(url, body, headers):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.load(r)


def send_turn(base, trace, user, feature, messages, turn_id):
    """One turn as the seed's Anthropic client sends it (createHeaders' x-portkey-* headers)."""
    session = trace.split("-")[-1]
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": "dummy",
        "x-portkey-config": "pc-prod-fallback-abc",
        "x-portkey-virtual-key": "anthropic-prod-vk-abc123",
        "x-portkey-trace-id": trace,
        "x-portkey-span-id": turn_id,
        "x-portkey-metadata": json.dumps(
            {"user_id": user, "session_id": session, "feature": feature, "environment": "production", "turn_id": turn_id}
        ),
    }
    body = {"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": messages}
    status, answer = post_json(f"{base}/v1/messages", body, headers)
    assert status == 200, answer
    messages.append({"role": "assistant", "content": answer["content"][0]["text"]})


def send_feedback(base, value):
    payload = {
        "trace_id": TRACE,
        "value": value,
        "label": "thumbs_up" if value > 0 else "thumbs_down",
        "weight": 1,
        "metadata": {"user_id": USER, "model": "claude-haiku-4-5", "comment": COMMENTS[value]},
    }
    status, answer = post_json(f"{base}/v1/feedback", payload, {})
    assert status == 200 and len(answer["feedback_ids"]) == 1, answer


def api(admin, path, params=None):
    url = f"{admin}/v1/analytics/{path}" + ("?" + urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def wait_for_store(admin, timeout=20):
    """The store writes off the request path: poll until the session (with both pieces of
    feedback) and the other request are queryable. Returns the session's rows, newest first."""
    deadline = time.monotonic() + timeout
    while True:
        session = api(admin, "requests", {"trace_id": TRACE, "time_range": "1h"})["data"]
        other = api(admin, "requests", {"trace_id": OTHER_TRACE, "time_range": "1h"})["data"]
        if len(session) == 2 and all(r["feedback"] for r in session) and other:
            return session
        if time.monotonic() > deadline:
            raise AssertionError(f"the store never showed the session: {session} {other}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def session_gateway(mock_provider):
    with running_gateway(mock_provider, store=True) as gw:
        messages = [{"role": "user", "content": "I can't connect to my database after upgrading to v2.1."}]
        send_turn(gw["base"], TRACE, USER, "support-chat", messages, "turn0001")
        send_feedback(gw["base"], 1)
        messages.append(
            {"role": "user", "content": "The error says 'connection refused on port 5432'. PostgreSQL is running."}
        )
        send_turn(gw["base"], TRACE, USER, "support-chat", messages, "turn0002")
        send_feedback(gw["base"], -1)
        send_turn(gw["base"], OTHER_TRACE, "user_1234", "docs-search", [{"role": "user", "content": "hi"}], "other001")
        yield {**gw, "rows": wait_for_store(gw["admin"])}


@pytest.fixture(scope="module")
def storeless_gateway(mock_provider):
    with running_gateway(mock_provider, store=False) as gw:
        yield gw


@pytest.fixture()
def browser():
    assert chromium_available(), "chromium and chromedriver are installed by scripts/test"
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, check, timeout=20):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: check(d), message=f"the console never showed {what}"
    )


SEARCH_JS = """
return {state: document.getElementById('view-traces').dataset.state,
        seq: Number(document.getElementById('view-traces').dataset.seq),
        status: document.getElementById('traces-status').textContent,
        rows: [...document.querySelectorAll('#traces-body tr[data-id]')].map(r => ({
          id: r.dataset.id, trace: r.dataset.traceId,
          link: r.querySelector('[data-field="trace_id"] a').getAttribute('href'),
          feedback: [...r.querySelectorAll('[data-field="feedback"] [data-value]')].map(f => f.dataset.value)}))};
"""

TRACE_JS = """
return {state: document.getElementById('view-trace').dataset.state,
        hash: location.hash, title: document.getElementById('trace-id').textContent,
        turns: [...document.querySelectorAll('#trace-turns [data-turn]')].map(t => ({
          turn: t.dataset.turn, id: t.dataset.id, outcome: t.dataset.outcome,
          model: t.querySelector('[data-field="model"]').textContent,
          feedback: [...t.querySelectorAll('[data-field="feedback"] [data-value]')]
            .map(f => ({value: f.dataset.value, text: f.textContent})),
          metadata: Object.fromEntries([...t.querySelectorAll('[data-field="metadata"] [data-key]')]
            .map(c => [c.dataset.key, c.dataset.value])),
          attempts_state: t.querySelector('[data-field="attempts"]').dataset.state,
          attempts: [...t.querySelectorAll('[data-field="attempts"] .attempt')].map(a => a.dataset.result),
          bars: [...t.querySelectorAll('[data-field="attempts"] .bar')].map(b => parseFloat(b.style.width))}))};
"""

ANALYTICS_JS = """
const view = document.getElementById('view-analytics');
const text = (r, f) => r.querySelector('[data-field="' + f + '"]').textContent;
return {state: view.dataset.state, seq: Number(view.dataset.seq), group_by: view.dataset.groupBy,
        groups: Object.fromEntries([...document.querySelectorAll('#analytics-body tr[data-group]')].map(r =>
          [r.dataset.group, {requests: text(r, 'requests'), feedback_count: text(r, 'feedback_count')}])),
        charts: Object.fromEntries([...document.querySelectorAll('#analytics-charts figure[data-metric]')].map(f =>
          [f.dataset.metric, Object.fromEntries([...f.querySelectorAll('.hbar-row')]
            .map(r => [r.dataset.group, r.dataset.value]))]))};
"""


def search_by_metadata(browser, admin):
    """The Traces view's form, `user_id=user_8821`: the session's two requests, newest first."""
    browser.get(admin + "/#traces")
    search = lambda d: d.execute_script(SEARCH_JS)
    wait_for(browser, "the first search", lambda d: search(d)["state"] == "done")
    assert browser.find_element(By.CSS_SELECTOR, 'nav.views [data-view="traces"]').get_attribute("aria-current") == "page"
    browser.find_element(By.CSS_SELECTOR, "#q-metadata .meta-filter").send_keys(f"user_id={USER}")
    Select(browser.find_element(By.ID, "q-range")).select_by_value("1h")
    before = search(browser)["seq"]
    browser.find_element(By.ID, "q-submit").click()
    wait_for(browser, "the metadata search", lambda d: search(d)["seq"] > before and search(d)["state"] == "done")
    return search(browser)


def open_trace(browser):
    trace = lambda d: d.execute_script(TRACE_JS)
    wait_for(
        browser,
        "the trace's turns and their attempts",
        lambda d: trace(d)["state"] == "done" and all(t["attempts_state"] == "done" for t in trace(d)["turns"]),
    )
    return trace(browser)


def check_turns(shown, rows):
    """Both turns, oldest first, each with its own feedback, metadata and two attempts."""
    assert shown["title"] == TRACE and shown["hash"] == "#trace=" + quote(TRACE, safe=""), shown
    turns = shown["turns"]
    assert [t["turn"] for t in turns] == ["1", "2"], turns
    assert [t["id"] for t in turns] == [rows[1]["id"], rows[0]["id"]], (turns, rows)
    for t, value in zip(turns, (1, -1)):
        assert [f["value"] for f in t["feedback"]] == [str(value)], t
        assert ("+1" if value > 0 else "−1") in t["feedback"][0]["text"], t
        assert COMMENTS[value] in t["feedback"][0]["text"], t
        assert t["metadata"]["user_id"] == USER and t["metadata"]["session_id"] == SESSION, t
        assert t["metadata"]["feature"] == "support-chat", t
        assert "claude-haiku-4-5" in t["model"], t  # the fallback's model answered
        # The overloaded primary, then the fallback that answered: two bars on the timeline.
        assert t["outcome"] == "fallback_ok", t
        assert len(t["attempts"]) == 2 and t["attempts"][0] != "ok" and t["attempts"][1] == "ok", t
        assert all(w > 0 for w in t["bars"]), t


def group_by_feature(browser):
    """Analytics by keyboard: the nav link, the group-by select, the metadata key and Enter."""
    browser.find_element(By.CSS_SELECTOR, 'nav.views [data-view="analytics"]').send_keys(Keys.ENTER)
    summary = lambda d: d.execute_script(ANALYTICS_JS)
    wait_for(browser, "the analytics view", lambda d: summary(d)["state"] == "done")
    Select(browser.find_element(By.ID, "a-group")).select_by_value("metadata")
    key = browser.find_element(By.ID, "a-meta-key")
    assert key.is_enabled() and browser.switch_to.active_element == key
    before = summary(browser)["seq"]
    key.send_keys("feature" + Keys.ENTER)
    wait_for(browser, "the summary by metadata.feature", lambda d: summary(d)["seq"] > before and summary(d)["state"] == "done")
    assert summary(browser)["group_by"] == "metadata.feature"
    return summary(browser)


def test_the_trace_explorer_finds_the_support_session(session_gateway, browser):
    admin, rows = session_gateway["admin"], session_gateway["rows"]

    found = search_by_metadata(browser, admin)
    assert [r["trace"] for r in found["rows"]] == [TRACE, TRACE], found
    assert [r["id"] for r in found["rows"]] == [r["id"] for r in rows], "newest first"
    assert [r["feedback"] for r in found["rows"]] == [["-1"], ["1"]], found

    # A trace id is a link to the trace view.
    browser.find_element(By.CSS_SELECTOR, '#traces-body tr[data-id] [data-field="trace_id"] a').click()
    check_turns(open_trace(browser), rows)
    assert browser.find_element(By.CSS_SELECTOR, 'nav.views [data-view="traces"]').get_attribute("aria-current") == "page"

    summary = group_by_feature(browser)
    assert summary["groups"]["support-chat"] == {"requests": "2", "feedback_count": "2"}, summary
    assert summary["groups"]["docs-search"]["requests"] == "1", summary
    charts = summary["charts"]
    assert set(charts) == {"cost_usd", "requests", "p95_ms", "fallback_rate", "feedback_mean"}, charts
    assert charts["requests"]["support-chat"] == "2" and charts["feedback_mean"]["support-chat"] == "0", charts
    assert charts["fallback_rate"]["support-chat"] == "1", charts

    # A link to a trace opens it in a fresh page.
    browser.get("about:blank")
    browser.get(admin + "/#trace=" + quote(TRACE, safe=""))
    check_turns(open_trace(browser), rows)

    assert foreign_requests(browser, admin) == []
    assert page_errors(browser) == []


def test_with_the_store_off_each_view_says_so(storeless_gateway, browser):
    admin = storeless_gateway["admin"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(admin, "requests")
    assert refused.value.code == 503
    assert json.load(refused.value)["error"]["code"] == "store_disabled"

    notice = "const s = document.getElementById(arguments[0]); return {code: s.dataset.code, text: s.textContent};"
    for fragment, view in (("#traces", "traces"), ("#analytics", "analytics"), ("#trace=" + TRACE, "trace")):
        browser.get(admin + "/" + fragment)
        settled = lambda d: d.find_element(By.ID, "view-" + view).get_attribute("data-state") == "error"
        wait_for(browser, f"the {view} view's notice", settled)
        shown = browser.execute_script(notice, view + "-status")
        assert shown["code"] == "store_disabled" and "request store is off" in shown["text"], shown

    # The live view does not need the store.
    browser.find_element(By.CSS_SELECTOR, 'nav.views [data-view="live"]').click()
    wait_for(browser, "a live stream", lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")

    assert foreign_requests(browser, admin) == []
    # Chromium logs each 503 answer as a failed load: those are the expected ones.
    expected = lambda e: "/v1/analytics/" in e["message"] and "status of 503" in e["message"]
    assert [e for e in page_errors(browser) if not expected(e)] == []
