"""Fixtures: the real switchyard binary in front of the real mock provider, on loopback."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))
PROVIDER_KEY = "sk-python-provider-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def mock_provider():
    proc = subprocess.Popen(
        [str(BINARY), "mock-provider", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("mock-provider listening on http://"), line
        yield line.rsplit("http://", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(mock_provider):
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
  # The same mock speaks every wire format; these providers reach it in theirs.
  mock-anthropic:
    kind: anthropic
    base_url: http://{mock_provider}
    api_key: {PROVIDER_KEY}
  mock-gemini:
    kind: gemini
    base_url: http://{mock_provider}
    api_key: {PROVIDER_KEY}
  # An OpenAI provider that answers 503 to everything (the mock's fault prefix).
  failing-openai:
    kind: openai
    base_url: http://{mock_provider}/fault/status=503/v1
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-python:
    provider: mock
    models: [gpt-4o-mini]
  vk-anthropic:
    provider: mock-anthropic
  vk-gemini:
    provider: mock-gemini
  vk-failing:
    provider: failing-openai
configs:
  openai-then-anthropic:
    strategy: {{ mode: fallback }}
    targets:
      - virtual_key: vk-failing
      - virtual_key: vk-anthropic
        override_params: {{ model: claude-haiku-4-5 }}
"""
        )
        proc = subprocess.Popen([str(BINARY), "run", "--config", str(config)], stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://{admin}/readyz")
            yield {"base_url": f"http://{listen}/v1", "admin": admin, "mock": mock_provider}
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


def mock_requests(mock: str) -> list:
    with urllib.request.urlopen(f"http://{mock}/_mock/requests", timeout=5) as r:
        return json.load(r)
