"""The response cache through the official openai SDK: a cached answer, whole or streamed,
parses exactly like the provider's (the stream is replayed as SSE), with Portkey's cache
status header."""

import subprocess
import tempfile
from pathlib import Path

import pytest
from openai import OpenAI

from conftest import BINARY, PROVIDER_KEY, free_port, mock_requests, wait_http


@pytest.fixture(scope="module")
def cached_gateway(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(
            f"""
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  mock:
    kind: openai-compatible
    base_url: http://{mock_provider}/v1
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-cached:
    provider: mock
    config: cached
configs:
  cached:
    cache: {{ mode: simple, max_age: 60 }}
    virtual_key: vk-cached
"""
        )
        proc = subprocess.Popen([str(BINARY), "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://{admin}/readyz")
            yield {"base_url": f"http://{listen}/v1", "mock": mock_provider}
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


def client(gw) -> OpenAI:
    return OpenAI(base_url=gw["base_url"], api_key="vk-cached", max_retries=0, timeout=30)


def chat_calls(gw) -> int:
    return sum(1 for r in mock_requests(gw["mock"]) if r["path"].endswith("/chat/completions"))


def test_a_whole_answer_is_served_from_the_cache(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "python cache, whole"}]
    before = chat_calls(cached_gateway)
    first = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    second = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert first.headers["x-portkey-cache-status"] == "MISS"
    assert second.headers["x-portkey-cache-status"] == "HIT"
    a, b = first.parse(), second.parse()
    assert b.id == a.id and b.choices[0].message.content == a.choices[0].message.content
    assert chat_calls(cached_gateway) == before + 1


def test_a_stream_is_replayed_as_a_valid_stream(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "python cache, streamed"}]
    before = chat_calls(cached_gateway)

    def stream_once():
        with c.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        ) as resp:
            status = resp.headers["x-portkey-cache-status"]
            chunks = list(resp.parse())
        return status, chunks

    status1, chunks1 = stream_once()
    status2, chunks2 = stream_once()
    assert (status1, status2) == ("MISS", "HIT")
    text = lambda chunks: "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text(chunks1).startswith("tok0")
    assert text(chunks2) == text(chunks1)
    assert any(ch.choices and ch.choices[0].finish_reason == "stop" for ch in chunks2)
    assert chunks2[-1].usage is not None and chunks2[-1].usage.completion_tokens > 0
    assert [ch.model_dump() for ch in chunks2] == [ch.model_dump() for ch in chunks1]
    assert chat_calls(cached_gateway) == before + 1


def test_force_refresh_asks_the_provider_again(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "python cache, refreshed"}]
    c.chat.completions.create(model="gpt-4o-mini", messages=messages)
    before = chat_calls(cached_gateway)
    refreshed = c.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_headers={"x-portkey-cache-force-refresh": "true"},
    )
    assert refreshed.headers["x-portkey-cache-status"] == "REFRESH"
    assert chat_calls(cached_gateway) == before + 1
    again = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert again.headers["x-portkey-cache-status"] == "HIT"
    assert again.parse().id == refreshed.parse().id
