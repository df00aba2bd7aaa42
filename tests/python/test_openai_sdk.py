"""The official openai SDK, pointed at the gateway with a virtual key, as an app would."""

import openai
import pytest
from openai import OpenAI

from conftest import PROVIDER_KEY, mock_requests


def client(gateway) -> OpenAI:
    return OpenAI(base_url=gateway["base_url"], api_key="vk-python", max_retries=0, timeout=30)


def test_non_streaming_chat_completion(gateway):
    resp = client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content
    assert resp.usage.total_tokens > 0
    last = mock_requests(gateway["mock"])[-1]
    headers = {k.lower(): v for k, v in last["headers"]}
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "vk-python" not in str(last)


def test_streaming_chat_completion(gateway):
    stream = client(gateway).chat.completions.create(
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


def test_model_outside_the_allowlist_is_a_permission_error(gateway):
    with pytest.raises(openai.PermissionDeniedError) as err:
        client(gateway).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 403
    assert "not allowed" in str(err.value)


def test_unknown_virtual_key_is_an_authentication_error(gateway):
    bad = OpenAI(base_url=gateway["base_url"], api_key="vk-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
