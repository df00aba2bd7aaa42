"""Every official SDK on its own API (issue 23): the openai SDK's Responses API, google-genai,
AzureOpenAI, anthropic with extended thinking and the OpenAI Agents SDK, through the real
gateway binary, served by the mock provider in its formats (directly, and by fallback in
another), in base-URL mode and in forward-proxy mode (HTTPS_PROXY and the gateway's CA)."""

import asyncio
import contextlib
import json
import subprocess
import tempfile
from pathlib import Path

import anthropic
import httpx
import pytest
from google import genai
from google.genai import types as gtypes
from openai import AsyncOpenAI, AzureOpenAI, OpenAI

from conftest import BINARY, PROVIDER_KEY, free_port, mock_requests, wait_http

# The mock's fixed thinking artefacts (crates/mock-provider/src/thinking.rs).
ANTHROPIC_SIGNATURE = "mock-anthropic-thinking-signature-v1"
REDACTED_THINKING_DATA = "mock-redacted-thinking-data-v1"
REDACTED_THINKING_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_"
    "46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"
)
THINKING_TEXT = "Mock thinking: the user wants a short answer."
REASONING_TOKENS = 8

HELLO = "Hello from the mock provider."
STREAMED = "tok0 tok1 tok2 tok3 tok4 "
TIMEOUT = 30
APP_KEY = "sk-app-key-the-provider-never-sees"
PROXY_ENV = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
             "NO_PROXY", "no_proxy", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "REQUESTS_CA_BUNDLE", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL",
             "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"]

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER_FN = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
              "parameters": WEATHER_PARAMS}


@contextlib.contextmanager
def running_gateway(config_text: str, tmp: Path, admin: str):
    config = tmp / "switchyard.yaml"
    config.write_text(config_text)
    log = open(tmp / "gateway.log", "w")
    proc = subprocess.Popen([str(BINARY), "run", "--config", str(config)], stdout=log, stderr=log)
    try:
        wait_http(f"http://{admin}/readyz")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def gw(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    m = mock_provider
    with tempfile.TemporaryDirectory() as tmp:
        text = f"""
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  oai:
    kind: openai
    base_url: http://{m}/v1
    api_key: {PROVIDER_KEY}
  claude:
    kind: anthropic
    base_url: http://{m}
    api_key: {PROVIDER_KEY}
  gem:
    kind: gemini
    base_url: http://{m}
    api_key: {PROVIDER_KEY}
  azure:
    kind: azure-openai
    base_url: http://{m}
    api_key: {PROVIDER_KEY}
    api_version: "2024-10-21"
    deployments: {{ gpt-4o: gpt4o-prod }}
  # The mock's fault prefix: every request to these answers 503.
  oai-down:
    kind: openai
    base_url: http://{m}/fault/status=503/v1
    api_key: {PROVIDER_KEY}
  claude-down:
    kind: anthropic
    base_url: http://{m}/fault/status=503
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-openai: {{ provider: oai }}
  vk-anthropic: {{ provider: claude }}
  vk-gemini: {{ provider: gem }}
  vk-azure: {{ provider: azure }}
  vk-openai-down: {{ provider: oai-down }}
  vk-anthropic-down: {{ provider: claude-down }}
configs:
  # A Responses client whose OpenAI target fails, served by Anthropic.
  responses-fallback:
    strategy: {{ mode: fallback }}
    targets:
      - virtual_key: vk-openai-down
      - virtual_key: vk-anthropic
        override_params: {{ model: claude-haiku-4-5 }}
  # An Anthropic client with thinking whose Anthropic target fails, served by OpenAI.
  thinking-fallback:
    strategy: {{ mode: fallback }}
    targets:
      - virtual_key: vk-anthropic-down
      - virtual_key: vk-openai
        override_params: {{ model: o4-mini }}
"""
        with running_gateway(text, Path(tmp), admin):
            yield {"root": f"http://{listen}", "base_url": f"http://{listen}/v1", "mock": m}


def count(mock: str) -> int:
    return len(mock_requests(mock))


def since(mock: str, n: int) -> list:
    """The upstream requests after the first n, headers as a lowercase dict, bodies parsed."""
    out = []
    for req in mock_requests(mock)[n:]:
        req["headers"] = {k.lower(): v for k, v in req["headers"]}
        try:
            req["json"] = json.loads(req["body"])
        except ValueError:
            req["json"] = None
        out.append(req)
    return out


def no_secret_leaks(reqs: list, *secrets: str) -> None:
    for req in reqs:
        for secret in secrets:
            assert secret not in json.dumps(req), f"{secret!r} reached the provider: {req['path']}"


# --- openai SDK: the Responses API, served by OpenAI (and Azure's v1 API) natively and, by
# fallback, by Anthropic ------------------------------------------------------------------------

# route -> (virtual key, config header, upstream path of the serving attempt, credential header,
# attempts)
RESPONSES_ROUTES = {
    "openai": ("vk-openai", None, "/v1/responses", "authorization", 1),
    "azure": ("vk-azure", None, "/openai/v1/responses", "api-key", 1),
    "fallback-to-anthropic": ("vk-openai", "responses-fallback", "/v1/messages", "x-api-key", 2),
}
NATIVE = ("openai", "azure")


def responses_client(gw, route: str) -> OpenAI:
    key, config = RESPONSES_ROUTES[route][:2]
    headers = {"x-switchyard-config": config} if config else None
    return OpenAI(base_url=gw["base_url"], api_key=key, default_headers=headers,
                  max_retries=0, timeout=TIMEOUT)


def check_responses_upstream(gw, route: str, n: int) -> dict:
    key, _, path, header, attempts = RESPONSES_ROUTES[route]
    reqs = since(gw["mock"], n)
    assert len(reqs) == attempts, [r["path"] for r in reqs]
    if attempts == 2:
        assert reqs[0]["path"] == "/v1/responses"  # the failed OpenAI attempt (503)
    served = reqs[-1]
    assert served["path"] == path
    want = f"Bearer {PROVIDER_KEY}" if header == "authorization" else PROVIDER_KEY
    assert served["headers"][header] == want
    no_secret_leaks(reqs, key)
    if path == "/v1/messages":
        assert served["json"]["model"] == "claude-haiku-4-5"
        assert served["headers"]["anthropic-version"]
    return served


@pytest.mark.parametrize("route", RESPONSES_ROUTES)
def test_responses_plain(gw, route):
    n = count(gw["mock"])
    resp = responses_client(gw, route).responses.create(
        model="gpt-4o-mini", instructions="Be brief.", input="Say hello", max_output_tokens=64
    )
    assert resp.object == "response" and resp.status == "completed"
    assert resp.output_text == HELLO
    assert resp.output[-1].type == "message" and resp.output[-1].role == "assistant"
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens == 5
    assert resp.usage.total_tokens == resp.usage.input_tokens + 5
    body = check_responses_upstream(gw, route, n)["json"]
    if route in NATIVE:
        assert body["instructions"] == "Be brief." and body["input"] == "Say hello"
    else:
        assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert body["max_tokens"] == 64
        assert body["messages"][-1]["role"] == "user"
        assert "Say hello" in json.dumps(body["messages"][-1]["content"])


@pytest.mark.parametrize("route", RESPONSES_ROUTES)
def test_responses_streaming(gw, route):
    n = count(gw["mock"])
    stream = responses_client(gw, route).responses.create(
        model="gpt-4o-mini", input=[{"role": "user", "content": "Say hello"}], stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    assert "response.output_item.added" in kinds and "response.output_text.done" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == STREAMED
    final = events[-1].response
    assert final.status == "completed" and final.output_text == STREAMED
    assert final.usage.output_tokens == 5 and final.usage.input_tokens > 0
    served = check_responses_upstream(gw, route, n)
    assert served["json"]["stream"] is True


@pytest.mark.parametrize("route", RESPONSES_ROUTES)
def test_responses_function_call(gw, route):
    client = responses_client(gw, route)
    n = count(gw["mock"])
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.responses.create(model="gpt-4o-mini", input=ask, tools=[WEATHER_FN])
    calls = [o for o in resp.output if o.type == "function_call"]
    assert len(calls) == 1, resp.output
    call = calls[0]
    assert call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments) == {"location": "Paris"}
    body = check_responses_upstream(gw, route, n)["json"]
    if route in NATIVE:
        assert body["tools"][0]["name"] == "get_weather"
    else:
        assert body["tools"][0]["name"] == "get_weather"
        assert body["tools"][0]["input_schema"] == WEATHER_PARAMS

    # The function's output goes back; the provider answers in text.
    n = count(gw["mock"])
    follow = client.responses.create(
        model="gpt-4o-mini",
        tools=[WEATHER_FN],
        input=ask + [
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"},
        ],
    )
    assert follow.output_text == "The tool returned: 18C and sunny."
    body = check_responses_upstream(gw, route, n)["json"]
    if route == "fallback-to-anthropic":
        results = [b for m in body["messages"] if isinstance(m["content"], list)
                   for b in m["content"] if b.get("type") == "tool_result"]
        assert results and results[0]["tool_use_id"] == call.call_id


# --- the OpenAI Agents SDK: one agent turn with one tool call --------------------------------


def test_agents_sdk_runs_a_turn_with_a_tool_call(gw):
    from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    set_default_openai_client(
        AsyncOpenAI(base_url=gw["base_url"], api_key="vk-openai", max_retries=0, timeout=TIMEOUT),
        use_for_tracing=False,
    )
    ran = []

    @function_tool
    def get_weather(location: str) -> str:
        """Current weather for a city."""
        ran.append(location)
        return "18C and sunny"

    agent = Agent(name="weather", instructions="Answer with the tool.", tools=[get_weather], model="gpt-4o-mini")
    n = count(gw["mock"])
    result = asyncio.run(asyncio.wait_for(Runner.run(agent, "Weather in Paris?"), 60))
    assert ran == ["Paris"]
    assert result.final_output == "The tool returned: 18C and sunny."
    reqs = since(gw["mock"], n)
    assert [r["path"] for r in reqs] == ["/v1/responses", "/v1/responses"]
    assert reqs[0]["json"]["tools"][0]["name"] == "get_weather"
    outputs = [i for i in reqs[1]["json"]["input"] if i.get("type") == "function_call_output"]
    assert outputs and outputs[0]["output"] == "18C and sunny"
    no_secret_leaks(reqs, "vk-openai")


# --- google-genai through the base URL ------------------------------------------------------

# virtual key -> (upstream path suffix of generateContent, of the stream, credential header)
GEMINI_SERVED_BY = {
    "vk-gemini": (":generateContent", ":streamGenerateContent?alt=sse", "x-goog-api-key"),
    "vk-openai": ("/v1/chat/completions", "/v1/chat/completions", "authorization"),
}


def gemini_client(gw, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=gw["root"], timeout=TIMEOUT * 1000))


def check_gemini_upstream(gw, key: str, n: int, stream: bool) -> dict:
    plain, streamed, header = GEMINI_SERVED_BY[key]
    reqs = since(gw["mock"], n)
    assert len(reqs) == 1, [r["path"] for r in reqs]
    req = reqs[0]
    assert req["path"].endswith(streamed if stream else plain), req["path"]
    if key == "vk-gemini":
        assert req["path"].startswith("/v1beta/models/gemini-2.5-flash:")
    want = f"Bearer {PROVIDER_KEY}" if header == "authorization" else PROVIDER_KEY
    assert req["headers"][header] == want
    no_secret_leaks(reqs, key)
    return req


def finish_reasons(chunks) -> list:
    return [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]


def last_usage(chunks):
    usages = [c.usage_metadata for c in chunks if c.usage_metadata and c.usage_metadata.candidates_token_count]
    assert usages, chunks
    return usages[-1]


@pytest.mark.parametrize("key", GEMINI_SERVED_BY)
def test_google_genai_generate_content_via_base_url(gw, key):
    client = gemini_client(gw, key)
    n = count(gw["mock"])
    resp = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="Say hello",
        config=gtypes.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64),
    )
    assert resp.text == HELLO
    assert resp.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert resp.usage_metadata.prompt_token_count > 0
    assert resp.usage_metadata.candidates_token_count == 5
    body = check_gemini_upstream(gw, key, n, stream=False)["json"]
    if key == "vk-gemini":
        assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert body["generationConfig"]["maxOutputTokens"] == 64
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 64

    n = count(gw["mock"])
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello"))
    assert "".join(c.text or "" for c in chunks) == STREAMED
    assert finish_reasons(chunks) == [gtypes.FinishReason.STOP]
    assert last_usage(chunks).candidates_token_count == 5
    check_gemini_upstream(gw, key, n, stream=True)


def test_gemini_key_query_parameter_never_reaches_the_provider(gw):
    """curl's and the REST docs' way: ?key=<virtual key>; the gateway moves it to a header."""
    n = count(gw["mock"])
    url = f"{gw['root']}/v1beta/models/gemini-2.5-flash:generateContent?key=vk-gemini"
    body = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}
    plain = httpx.Client(trust_env=False, timeout=TIMEOUT)
    r = plain.post(url, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == HELLO
    req = check_gemini_upstream(gw, "vk-gemini", n, stream=False)
    assert "key=" not in req["path"]
    # Streamed without alt=sse: one JSON array.
    n = count(gw["mock"])
    r = plain.post(url.replace(":generateContent", ":streamGenerateContent"), json=body)
    assert r.status_code == 200, r.text
    assert "".join(p["text"] for c in r.json() for p in c["candidates"][0]["content"]["parts"]) == STREAMED
    reqs = since(gw["mock"], n)
    assert "key=" not in reqs[0]["path"] and reqs[0]["headers"]["x-goog-api-key"] == PROVIDER_KEY
    no_secret_leaks(reqs, "vk-gemini")


# --- AzureOpenAI through the base URL --------------------------------------------------------

AZURE_UPSTREAM = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"


def check_azure_upstream(mock: str, n: int, *secrets: str) -> dict:
    reqs = since(mock, n)
    assert len(reqs) == 1, [r["path"] for r in reqs]
    req = reqs[0]
    # The deployment the client named (gpt-4o) is the model; the provider maps it to its
    # deployment and sends its own api-version, not the client's.
    assert req["path"] == AZURE_UPSTREAM
    assert req["headers"]["api-key"] == PROVIDER_KEY
    assert "authorization" not in req["headers"]
    no_secret_leaks(reqs, "2025-04-01-preview", *secrets)
    return req


def azure_chat_plain_and_streaming(client: AzureOpenAI, mock: str, *secrets: str) -> None:
    n = count(mock)
    resp = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}])
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content == HELLO
    assert resp.usage.total_tokens > 0
    check_azure_upstream(mock, n, *secrets)

    n = count(mock)
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}], stream=True,
        stream_options={"include_usage": True},
    ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == STREAMED
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.completion_tokens == 5
    check_azure_upstream(mock, n, *secrets)


def test_azure_openai_chat_via_base_url(gw):
    client = AzureOpenAI(azure_endpoint=gw["root"], api_key="vk-azure", api_version="2025-04-01-preview",
                         max_retries=0, timeout=TIMEOUT)
    azure_chat_plain_and_streaming(client, gw["mock"], "vk-azure")


# --- anthropic with extended thinking --------------------------------------------------------

THINKING = {"type": "enabled", "budget_tokens": 1024}


def anthropic_client(gw, config=None) -> anthropic.Anthropic:
    headers = {"x-switchyard-config": config} if config else None
    return anthropic.Anthropic(base_url=gw["root"], api_key="vk-anthropic", default_headers=headers,
                               max_retries=0, timeout=TIMEOUT)


def test_anthropic_thinking_served_by_anthropic(gw):
    client = anthropic_client(gw)
    ask = [{"role": "user", "content": "Say hello"}]
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=ask)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == THINKING_TEXT
    assert msg.content[0].signature == ANTHROPIC_SIGNATURE
    assert msg.content[1].text == HELLO
    assert msg.usage.output_tokens == 5 + REASONING_TOKENS

    # Streamed: the thinking deltas and the signature delta, then the text.
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=ask) as s:
        events = list(s)
        final = s.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas[:3] == ["thinking_delta", "thinking_delta", "signature_delta"], deltas
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == THINKING_TEXT
    assert final.content[0].signature == ANTHROPIC_SIGNATURE
    assert final.content[1].text == STREAMED

    # Redacted thinking, then the whole turn sent back: the mock refuses any block whose
    # signature or data changed on the way.
    tricky = [{"role": "user", "content": REDACTED_THINKING_TRIGGER}]
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=tricky)
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text"]
    assert msg.content[1].data == REDACTED_THINKING_DATA
    n = count(gw["mock"])
    turn = tricky + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": "And again?"},
    ]
    again = client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=turn)
    assert again.content[-1].text == HELLO
    (req,) = since(gw["mock"], n)
    assert req["path"] == "/v1/messages"
    sent = req["json"]["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": THINKING_TEXT, "signature": ANTHROPIC_SIGNATURE}
    assert sent[1] == {"type": "redacted_thinking", "data": REDACTED_THINKING_DATA}
    assert req["json"]["thinking"] == THINKING


def check_thinking_fallback(gw, n: int) -> dict:
    reqs = since(gw["mock"], n)
    assert [r["path"] for r in reqs] == ["/v1/messages", "/v1/chat/completions"]
    served = reqs[1]
    body = served["json"]
    assert body["model"] == "o4-mini"
    assert "thinking" not in body
    # Thinking asked of Anthropic is reasoning asked of OpenAI.
    assert body.get("reasoning_effort") in ("minimal", "low", "medium", "high"), body
    assert served["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    no_secret_leaks(reqs, "vk-anthropic")
    return body


def test_anthropic_thinking_served_by_openai_by_fallback(gw):
    client = anthropic_client(gw, config="thinking-fallback")
    ask = [{"role": "user", "content": "Say hello"}]
    n = count(gw["mock"])
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=ask)
    check_thinking_fallback(gw, n)
    # OpenAI chat returns no reasoning text: no thinking block, never a forged signature.
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == HELLO
    assert msg.stop_reason == "end_turn"
    # The provider's reasoning tokens are output tokens.
    assert msg.usage.output_tokens == 5 + REASONING_TOKENS

    n = count(gw["mock"])
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=2048, thinking=THINKING, messages=ask) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    check_thinking_fallback(gw, n)
    assert text == STREAMED
    assert [b.type for b in final.content] == ["text"]
    assert final.usage.output_tokens == 5 + REASONING_TOKENS


# --- forward-proxy mode: google-genai and AzureOpenAI through HTTPS_PROXY ---------------------


@pytest.fixture(scope="module")
def forward_gw(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    m = mock_provider
    with tempfile.TemporaryDirectory() as tmp:
        ca_dir = Path(tmp) / "ca"
        subprocess.run([str(BINARY), "ca", "init", "--out", str(ca_dir)], check=True, capture_output=True,
                       timeout=60)
        text = f"""
listen: {listen}
admin_listen: {admin}
threads: 1
providers:
  gem:
    kind: gemini
    base_url: http://{m}
    api_key: {PROVIDER_KEY}
  azure:
    kind: azure-openai
    base_url: http://{m}
    api_key: {PROVIDER_KEY}
    api_version: "2024-10-21"
    deployments: {{ gpt-4o: gpt4o-prod }}
forward:
  ca_cert: {ca_dir}/ca.pem
  ca_key: {ca_dir}/ca.key
  intercept: [generativelanguage.googleapis.com, "*.openai.azure.com"]
  providers:
    generativelanguage.googleapis.com: gem
    "*.openai.azure.com": azure
"""
        with running_gateway(text, Path(tmp), admin):
            yield {"proxy": f"http://{listen}", "ca": ca_dir, "mock": m}


@pytest.fixture
def app_env(forward_gw, monkeypatch):
    """The app's whole setup: the proxy and the CA bundle, nothing else."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", forward_gw["proxy"])
    monkeypatch.setenv("SSL_CERT_FILE", str(forward_gw["ca"] / "bundle.pem"))
    return forward_gw


def test_google_genai_through_https_proxy(app_env):
    client = genai.Client(api_key=APP_KEY, http_options=gtypes.HttpOptions(timeout=TIMEOUT * 1000))
    n = count(app_env["mock"])
    resp = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    assert resp.text == HELLO
    assert resp.usage_metadata.candidates_token_count == 5
    (req,) = since(app_env["mock"], n)
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req["headers"]["x-goog-api-key"] == PROVIDER_KEY
    no_secret_leaks([req], APP_KEY)

    n = count(app_env["mock"])
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello"))
    assert "".join(c.text or "" for c in chunks) == STREAMED
    assert finish_reasons(chunks) == [gtypes.FinishReason.STOP]
    assert last_usage(chunks).candidates_token_count == 5
    (req,) = since(app_env["mock"], n)
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert req["headers"]["x-goog-api-key"] == PROVIDER_KEY
    no_secret_leaks([req], APP_KEY)


def test_azure_openai_through_https_proxy(app_env):
    client = AzureOpenAI(azure_endpoint="https://my-resource.openai.azure.com", api_key=APP_KEY,
                         api_version="2025-04-01-preview", max_retries=0, timeout=TIMEOUT)
    azure_chat_plain_and_streaming(client, app_env["mock"], APP_KEY)
