"""Issue 19: a Portkey user changes one base URL and keeps everything else.

- `switchyard run` with no config file: the official openai and anthropic SDKs, with only the
  base URL changed and their own keys, reach the provider (here the mock, through the
  documented SWITCHYARD_<ID>_BASE_URL variables) with those keys; no credential is a 401 that
  says what to send.
- The portkey-ai SDK: `Portkey(provider="openai", Authorization="sk-test")` (passthrough),
  `with_options(config=<dict>)` (an inline config), a config named by id, and trace id,
  metadata and feedback round-tripping.
"""

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest
from portkey_ai import Portkey

from conftest import BINARY, free_port, mock_requests, wait_http

PROMPT = [{"role": "user", "content": "Say hello"}]


def start(args, env_extra, admin, access_log=None):
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    out = open(access_log, "w") if access_log else subprocess.DEVNULL
    proc = subprocess.Popen([str(BINARY), "run", *args], stdout=out, stderr=subprocess.PIPE, env=env, text=True)
    try:
        wait_http(f"http://{admin}/readyz")
    except Exception:
        proc.terminate()
        raise
    return proc


def stop(proc):
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def zero_config(mock_provider):
    """`switchyard run` without a file: passthrough to the standard providers, which the
    documented environment variables point at the mock."""
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {
        "SWITCHYARD_OPENAI_BASE_URL": f"http://{mock_provider}/v1",
        "SWITCHYARD_ANTHROPIC_BASE_URL": f"http://{mock_provider}",
    }
    proc = start(["--listen", listen, "--admin-listen", admin], env, admin)
    gw = {"listen": listen, "admin": admin, "mock": mock_provider, "log": ""}
    try:
        yield gw
    finally:
        gw["log"] = stop(proc)


def last_request(mock, path_suffix):
    reqs = [r for r in mock_requests(mock) if r["path"].endswith(path_suffix)]
    assert reqs, f"the mock saw no request to {path_suffix}"
    return reqs[-1]


def header(req, name):
    return dict(req["headers"]).get(name)


def test_openai_sdk_with_its_own_key_and_no_config(zero_config):
    client = openai.OpenAI(base_url=f"http://{zero_config['listen']}/v1", api_key="sk-client-openai-1")
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert resp.choices[0].message.content == "Hello from the mock provider."
    assert header(last_request(zero_config["mock"], "/v1/chat/completions"), "authorization") == (
        "Bearer sk-client-openai-1"
    )
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("tok0 ")


def test_anthropic_sdk_with_its_own_key_and_no_config(zero_config):
    client = anthropic.Anthropic(base_url=f"http://{zero_config['listen']}", api_key="sk-ant-client-2")
    msg = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=PROMPT)
    assert msg.content[0].text == "Hello from the mock provider."
    req = last_request(zero_config["mock"], "/v1/messages")
    assert header(req, "x-api-key") == "sk-ant-client-2"
    assert header(req, "authorization") is None
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=PROMPT) as s:
        assert "".join(s.text_stream).startswith("tok0 ")


def test_no_credential_is_a_401_saying_what_to_send(zero_config):
    req = urllib.request.Request(
        f"http://{zero_config['listen']}/v1/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini", "messages": PROMPT}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    message = json.load(e.value)["error"]["message"]
    assert message.startswith("no credential") and "own provider key" in message, message


def test_portkey_sdk_provider_passthrough(zero_config):
    client = Portkey(base_url=f"http://{zero_config['listen']}/v1", provider="openai", Authorization="sk-test")
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert resp.choices[0].message.content == "Hello from the mock provider."
    assert header(last_request(zero_config["mock"], "/v1/chat/completions"), "authorization") == "Bearer sk-test"


def test_the_callers_keys_never_reach_the_log_or_metrics(zero_config):
    with urllib.request.urlopen(f"http://{zero_config['admin']}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'config="passthrough"' in metrics
    for key in ["sk-client-openai-1", "sk-ant-client-2", "sk-test"]:
        assert key not in metrics


# --- A config file with virtual keys: inline configs, configs by id, trace and feedback -------


@pytest.fixture(scope="module")
def portkey_gateway(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(
            f"""
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  mock: {{ kind: openai-compatible, base_url: "http://{mock_provider}/v1", api_key: sk-provider }}
  mock-anthropic: {{ kind: anthropic, base_url: "http://{mock_provider}", api_key: sk-provider }}
  down: {{ kind: anthropic, base_url: "http://{mock_provider}/fault/status=503", api_key: sk-provider }}
virtual_keys:
  PORTKEY_ANTHROPIC_VIRTUAL_KEY: {{ provider: mock-anthropic }}
  PORTKEY_OPENAI_VIRTUAL_KEY: {{ provider: mock }}
  anthropic-down: {{ provider: down }}
configs:
  pc-prod-fallback:
    {{"strategy": {{"mode": "fallback"}},
     "targets": [{{"virtual_key": "anthropic-down", "override_params": {{"model": "claude-sonnet-4-6"}}}},
                 {{"virtual_key": "PORTKEY_OPENAI_VIRTUAL_KEY", "override_params": {{"model": "gpt-4o"}}}}]}}
"""
        )
        log = Path(tmp) / "access.log"
        proc = start(["--config", str(config)], {}, admin, log)
        try:
            yield {"base_url": f"http://{listen}/v1", "admin": admin, "mock": mock_provider, "log": log}
        finally:
            stop(proc)


def fallback_config(primary):
    return {
        "strategy": {"mode": "fallback"},
        "retry": {"attempts": 1, "on_status_codes": [429, 500, 502, 503, 504]},
        "targets": [
            {"virtual_key": primary, "override_params": {"model": "claude-sonnet-4-6"}, "request_timeout": 20000},
            {"virtual_key": "PORTKEY_OPENAI_VIRTUAL_KEY", "override_params": {"model": "gpt-4o"}, "request_timeout": 20000},
        ],
    }


def test_inline_config_dict_answers_from_the_primary_and_from_the_fallback(portkey_gateway):
    client = Portkey(base_url=portkey_gateway["base_url"], api_key="unused")
    primary = client.with_options(config=fallback_config("PORTKEY_ANTHROPIC_VIRTUAL_KEY"))
    resp = primary.chat.completions.create(model="claude-sonnet-4-6", messages=PROMPT, max_tokens=50)
    assert resp.choices[0].message.content == "Hello from the mock provider."
    assert resp.model == "claude-sonnet-4-6"
    assert last_request(portkey_gateway["mock"], "/v1/messages")["path"] == "/v1/messages"

    failing = client.with_options(config=fallback_config("anthropic-down"))
    resp = failing.chat.completions.create(model="claude-sonnet-4-6", messages=PROMPT, max_tokens=50)
    assert resp.model == "gpt-4o"
    # The SDK keeps the x-portkey-* response headers, without the prefix.
    assert resp.get_headers()["last-used-option-index"] == "config.targets[1]"


def test_a_bad_inline_config_is_a_400_naming_its_json_path(portkey_gateway):
    client = Portkey(base_url=portkey_gateway["base_url"], api_key="unused")
    bad = {"targets": [{"virtual_key": "PORTKEY_OPENAI_VIRTUAL_KEY"}, {"virtual_key": "no-such-key"}]}
    with pytest.raises(Exception) as e:
        client.with_options(config=bad).chat.completions.create(model="gpt-4o", messages=PROMPT)
    assert getattr(e.value, "status_code", None) == 400, e.value
    assert "$.targets[1].virtual_key" in str(e.value) and "no-such-key" not in str(e.value)


def test_a_config_named_by_id(portkey_gateway):
    client = Portkey(base_url=portkey_gateway["base_url"], api_key="unused", config="pc-prod-fallback")
    resp = client.chat.completions.create(model="claude-sonnet-4-6", messages=PROMPT, max_tokens=50)
    assert resp.model == "gpt-4o"


def test_trace_id_metadata_and_feedback_round_trip(portkey_gateway):
    client = Portkey(
        base_url=portkey_gateway["base_url"],
        api_key="unused",
        virtual_key="PORTKEY_OPENAI_VIRTUAL_KEY",
        trace_id="sess_abc123",
        metadata={"user_id": "user_8821", "feature": "support-chat"},
    )
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    # The SDK keeps the x-portkey-* response headers, without the prefix.
    assert resp.get_headers()["trace-id"] == "sess_abc123"
    with urllib.request.urlopen(f"http://{portkey_gateway['admin']}/api/console", timeout=5) as r:
        console = json.load(r)
    assert any(q.get("trace_id") == "sess_abc123" for q in console["requests"]), console["requests"][:2]
    # The access log line (stdout, JSON) carries the trace id and the metadata as sent.
    deadline = time.monotonic() + 10
    while True:  # the access log is written off the request path: wait for the line
        lines = [json.loads(l) for l in portkey_gateway["log"].read_text().splitlines() if l.startswith("{")]
        seen = [l for l in lines if l.get("trace_id") == "sess_abc123"]
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert seen and seen[-1]["metadata"]["user_id"] == "user_8821", lines[-2:]
    fb = client.feedback.create(trace_id="sess_abc123", value=1, weight=1.0, metadata={"user_id": "user_8821"})
    assert len(fb.feedback_ids) == 1
    with urllib.request.urlopen(f"http://{portkey_gateway['admin']}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    counted = [l for l in lines if l.startswith("switchyard_feedback_total{") and 'value="1"' in l]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1, counted


# The tutorial's complete production config, verbatim (its virtual-key names are the file's).
PRODUCTION_CONFIG = {
    "strategy": {"mode": "fallback"},
    "cache": {"mode": "semantic", "max_age": 86400, "similarity_threshold": 0.95},
    "retry": {"attempts": 2, "on_status_codes": [429, 500, 502, 503, 504]},
    "targets": [
        {"virtual_key": "PORTKEY_ANTHROPIC_VIRTUAL_KEY", "override_params": {"model": "claude-sonnet-4-6"}, "request_timeout": 20000, "weight": 1},
        {"virtual_key": "PORTKEY_OPENAI_VIRTUAL_KEY", "override_params": {"model": "gpt-4o"}, "request_timeout": 20000, "weight": 1},
    ],
    "guardrails": {
        "input": [{"type": "regex", "pattern": "\\b(password|secret|api.?key)\\b", "action": "block", "flags": ["IGNORECASE"]}],
        "output": [{"type": "word_count", "min": 10, "max": 2000, "action": "warn"}],
    },
}


def test_the_tutorials_production_config_inline_from_primary_then_fallback(portkey_gateway):
    client = Portkey(base_url=portkey_gateway["base_url"], api_key="unused").with_options(config=PRODUCTION_CONFIG)
    # The mock's answer has 5 words: the output check warns (Portkey's 246, a success) and
    # the answer is delivered.
    resp = client.chat.completions.create(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Explain microservices briefly."}], max_tokens=200
    )
    assert resp.model == "claude-sonnet-4-6" and resp.choices[0].message.content == "Hello from the mock provider."
    # The primary fails three times (the call and its 2 retries): the fallback answers.
    resp = client.chat.completions.create(
        model="claude-sonnet-4-6",
        messages=[{"role": "user", "content": "Explain queues in one line, please, for the fallback."}],
        max_tokens=200,
        extra_headers={"x-mock-fault": "status=503,fail_first=3"},
    )
    assert resp.model == "gpt-4o"
    assert resp.get_headers()["last-used-option-index"] == "config.targets[1]"
    # The input check blocks before any provider call.
    before = len(mock_requests(portkey_gateway["mock"]))
    with pytest.raises(Exception) as e:
        client.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "my PASSWORD is x"}])
    assert getattr(e.value, "status_code", None) == 446, e.value
    assert len(mock_requests(portkey_gateway["mock"])) == before
