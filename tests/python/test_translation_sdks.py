"""Any client format served by any provider: the official openai, anthropic and portkey-ai SDKs
against mock providers speaking another wire format, through the real gateway."""

import json

import anthropic
from openai import OpenAI
from portkey_ai import Portkey

from conftest import PROVIDER_KEY, mock_requests

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def openai_client(gateway, key: str) -> OpenAI:
    return OpenAI(base_url=gateway["base_url"], api_key=key, max_retries=0, timeout=30)


def last_request(gateway) -> dict:
    req = mock_requests(gateway["mock"])[-1]
    req["headers"] = {k.lower(): v for k, v in req["headers"]}
    return req


# --- openai SDK served by Anthropic and Gemini ---------------------------------------------

PROVIDERS = {
    "vk-anthropic": ("/v1/messages", "x-api-key", PROVIDER_KEY),
    "vk-gemini": (":generateContent", "x-goog-api-key", PROVIDER_KEY),
}


def check_upstream(gateway, key: str, stream: bool) -> dict:
    path, header, value = PROVIDERS[key]
    req = last_request(gateway)
    if key == "vk-gemini" and stream:
        path = ":streamGenerateContent?alt=sse"
    assert req["path"].endswith(path), req["path"]
    assert req["headers"][header] == value
    assert "authorization" not in req["headers"]
    assert key not in json.dumps(req)
    return req


def test_openai_sdk_non_streaming_via_other_formats(gateway):
    for key in PROVIDERS:
        resp = openai_client(gateway, key).chat.completions.create(
            model="some-model",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            max_tokens=50,
        )
        assert resp.object == "chat.completion"
        assert resp.choices[0].message.role == "assistant"
        assert resp.choices[0].message.content == "Hello from the mock provider."
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
        req = check_upstream(gateway, key, stream=False)
        body = json.loads(req["body"])
        if key == "vk-anthropic":
            assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
            assert body["max_tokens"] == 50
        else:
            assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."


def test_openai_sdk_streaming_via_other_formats(gateway):
    for key in PROVIDERS:
        stream = openai_client(gateway, key).chat.completions.create(
            model="some-model",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "tok0 tok1 tok2 tok3 tok4 "
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == ["stop"]
        assert len({c.id for c in chunks}) == 1
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
        check_upstream(gateway, key, stream=True)

        # Without include_usage there is no usage chunk.
        chunks = list(
            openai_client(gateway, key).chat.completions.create(
                model="some-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert all(c.choices for c in chunks)


def test_openai_sdk_tool_calling_via_other_formats(gateway):
    for key in PROVIDERS:
        client = openai_client(gateway, key)
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        resp = client.chat.completions.create(model="some-model", messages=messages, tools=[WEATHER_TOOL])
        choice = resp.choices[0]
        assert choice.finish_reason == "tool_calls"
        call = choice.message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"location": "Paris"}

        # Streamed: the same call assembled from deltas.
        chunks = list(
            client.chat.completions.create(
                model="some-model", messages=messages, tools=[WEATHER_TOOL], stream=True
            )
        )
        deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert deltas[0].function.name == "get_weather" and deltas[0].id
        args = "".join(d.function.arguments or "" for d in deltas)
        assert json.loads(args) == {"location": "Paris"}
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]

        # The tool's result goes back; the provider answers in text.
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ]
        resp = client.chat.completions.create(model="some-model", messages=messages, tools=[WEATHER_TOOL])
        assert "18C and sunny" in resp.choices[0].message.content


# --- anthropic SDK served by an OpenAI-format provider --------------------------------------


def anthropic_client(gateway) -> anthropic.Anthropic:
    base = gateway["base_url"].removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key="vk-python", max_retries=0, timeout=30)


def test_anthropic_sdk_non_streaming_via_openai(gateway):
    msg = anthropic_client(gateway).messages.create(
        model="gpt-4o-mini",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "Hello from the mock provider."
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    req = last_request(gateway)
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    body = json.loads(req["body"])
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_anthropic_sdk_streaming_via_openai(gateway):
    with anthropic_client(gateway).messages.stream(
        model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("tok0")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_anthropic_sdk_gets_errors_in_its_format(gateway):
    bad = anthropic.Anthropic(
        base_url=gateway["base_url"].removesuffix("/v1"), api_key="vk-nope", max_retries=0
    )
    try:
        bad.messages.create(model="x", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401
        assert e.body["type"] == "error" and e.body["error"]["type"] == "authentication_error"
    else:
        raise AssertionError("an unknown virtual key must be refused")


# --- portkey-ai SDK: fallback from a failing OpenAI target to Anthropic ----------------------


def test_portkey_sdk_falls_back_from_openai_to_anthropic(gateway):
    client = Portkey(
        base_url=gateway["base_url"],
        api_key="unused-portkey-key",
        virtual_key="vk-failing",
        config="openai-then-anthropic",
    )
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=20
    )
    assert resp.choices[0].message.content == "Hello from the mock provider."
    assert resp.model == "claude-haiku-4-5"
    reqs = mock_requests(gateway["mock"])
    assert reqs[-2]["path"].endswith("/v1/chat/completions")
    assert reqs[-1]["path"] == "/v1/messages"
    assert json.loads(reqs[-1]["body"])["model"] == "claude-haiku-4-5"


# --- portkey-ai SDK: feedback, created then updated by its id --------------------------------


def test_portkey_sdk_feedback_is_created_then_updated(gateway):
    client = Portkey(base_url=gateway["base_url"], api_key="unused-portkey-key", virtual_key="vk-failing")
    created = client.feedback.create(trace_id="py-trace-1", value=5, weight=0.5, metadata={"user": "u1"})
    assert created.status == "success"
    (feedback_id,) = created.feedback_ids
    updated = client.feedback.update(feedback_id=feedback_id, value=-3, weight=1, metadata={"why": "late"})
    assert updated.status == "success"
    assert updated.feedback_ids == [feedback_id]
    # An id the gateway never issued: Portkey's SDK raises its 404 error.
    try:
        client.feedback.update(feedback_id="0" * 32, value=1)
    except Exception as e:  # noqa: BLE001 — the SDK's own NotFoundError, whatever its module
        assert getattr(e, "status_code", None) == 404, repr(e)
    else:
        raise AssertionError("an unknown feedback id was updated")
