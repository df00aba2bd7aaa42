"""Guardrails as the official SDKs see them: 446 raises, 246 is a normal answer, and the final
guardrail event of a stream does not disturb the openai or anthropic stream parsers. Runs
conf/examples/guardrails.yaml in front of the mock provider."""

import subprocess
import tempfile
from pathlib import Path

import anthropic
import openai
import pytest
from openai import OpenAI

from conftest import BINARY, ROOT, free_port, wait_http


@pytest.fixture(scope="module")
def guarded(mock_provider):
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    example = (ROOT / "conf" / "examples" / "guardrails.yaml").read_text()
    text = f"listen: {listen}\nadmin_listen: {admin}\nthreads: 1\n" + example.replace(
        "127.0.0.1:9901", mock_provider
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "switchyard.yaml"
        config.write_text(text)
        proc = subprocess.Popen([str(BINARY), "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://{admin}/readyz")
            yield f"http://{listen}"
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


def openai_client(base: str, config: str) -> OpenAI:
    return OpenAI(
        base_url=f"{base}/v1",
        api_key="unused",
        max_retries=0,
        timeout=30,
        default_headers={"x-portkey-config": config},
    )


def test_a_denied_input_raises_with_status_446(guarded):
    with pytest.raises(openai.APIStatusError) as err:
        openai_client(guarded, "screened").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "my password is hunter2"}]
        )
    assert err.value.status_code == 446
    body = err.value.body
    assert body["type"] == "hooks_failed"
    assert "no_secrets" in body["message"]


def test_a_warning_is_a_normal_answer_with_status_246(guarded):
    raw = openai_client(guarded, "screened").chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "word " * 60}]
    )
    assert raw.status_code == 246
    assert raw.headers["x-switchyard-guardrails-failed"] == "input:word_count"
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the mock provider."
    assert completion.model_extra["hook_results"]["before_request_hooks"][0]["verdict"] is False


def test_the_openai_stream_parser_takes_the_final_guardrail_chunk(guarded):
    stream = openai_client(guarded, "audited").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "contact?"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Write to bob@example.com or call 555-123-4567."
    final = chunks[-1]
    assert final.choices == []
    hooks = final.model_extra["hook_results"]["after_request_hooks"][0]
    assert hooks["enforced"] is False
    assert [c["id"] for c in hooks["checks"] if not c["verdict"]] == ["pii", "too_short"]


def test_the_anthropic_stream_parser_skips_the_final_guardrail_event(guarded):
    client = anthropic.Anthropic(
        base_url=guarded,
        api_key="unused",
        max_retries=0,
        timeout=30,
        default_headers={"x-portkey-config": "audited"},
    )
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "contact?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Write to bob@example.com or call 555-123-4567."
    assert message.stop_reason == "end_turn"
