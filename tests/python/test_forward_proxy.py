"""Forward-proxy mode: the official openai SDK configured only with HTTPS_PROXY and the CA bundle
(no base-URL change) talks to https://api.openai.com/v1, which the gateway intercepts and routes
to the mock provider with the real key injected."""

import subprocess
import tempfile
import urllib.request
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from conftest import BINARY, PROVIDER_KEY, free_port, mock_requests, wait_http

APP_KEY = "sk-app-key-the-provider-never-sees"
PROXY_ENV = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
             "NO_PROXY", "no_proxy", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "REQUESTS_CA_BUNDLE"]


@pytest.fixture(scope="module")
def forward_gateway(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        ca_dir = Path(tmp) / "ca"
        subprocess.run([str(BINARY), "ca", "init", "--out", str(ca_dir)], check=True, capture_output=True)
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(
            f"""
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  openai:
    kind: openai
    base_url: http://{mock_provider}/v1
    api_key: {PROVIDER_KEY}
  claude:
    kind: anthropic
    base_url: http://{mock_provider}
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-forward:
    provider: openai
forward:
  ca_cert: {ca_dir}/ca.pem
  ca_key: {ca_dir}/ca.key
"""
        )
        proc = subprocess.Popen([str(BINARY), "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://{admin}/readyz")
            yield {"proxy": f"http://{listen}", "ca": ca_dir, "mock": mock_provider, "admin": admin}
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


@pytest.fixture
def app_env(forward_gateway, monkeypatch):
    """The app's whole setup: the proxy and the CA bundle, nothing else."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", forward_gateway["proxy"])
    monkeypatch.setenv("SSL_CERT_FILE", str(forward_gateway["ca"] / "bundle.pem"))
    return forward_gateway


def client(key=APP_KEY) -> OpenAI:
    c = OpenAI(api_key=key, max_retries=0, timeout=30)
    assert str(c.base_url) == "https://api.openai.com/v1/"
    return c


def last_upstream(gw) -> dict:
    req = mock_requests(gw["mock"])[-1]
    req["headers"] = {k.lower(): v for k, v in req["headers"]}
    return req


def test_non_streaming_chat_completion_through_https_proxy(app_env):
    resp = client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content
    assert resp.usage.total_tokens > 0
    req = last_upstream(app_env)
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert APP_KEY not in str(req)


def test_streaming_chat_completion_through_https_proxy(app_env):
    stream = client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("tok0")
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    req = last_upstream(app_env)
    assert req["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert APP_KEY not in str(req)


def test_a_virtual_key_works_as_the_app_credential(app_env):
    resp = client("vk-forward").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content
    assert "vk-forward" not in str(last_upstream(app_env))


def test_the_anthropic_sdk_reaches_its_host_provider(app_env):
    c = anthropic.Anthropic(api_key=APP_KEY, max_retries=0, timeout=30)
    assert str(c.base_url).startswith("https://api.anthropic.com")
    msg = c.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert msg.type == "message" and msg.content[0].text
    req = last_upstream(app_env)
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == PROVIDER_KEY
    assert APP_KEY not in str(req)


def test_an_app_without_the_ca_refuses_the_intercepted_certificate(forward_gateway, monkeypatch):
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", forward_gateway["proxy"])
    with pytest.raises(openai.APIConnectionError):
        client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_hosts_not_intercepted_or_allowed_are_refused(app_env):
    with httpx.Client(timeout=10) as c:
        with pytest.raises(httpx.ProxyError, match="403"):
            c.get("https://example.com/")
    with urllib.request.urlopen(f"http://{app_env['admin']}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    refused = [l for l in metrics.splitlines() if l.startswith('switchyard_forward_connections_total{mode="refused"}')]
    assert refused and float(refused[0].split()[-1]) >= 1
