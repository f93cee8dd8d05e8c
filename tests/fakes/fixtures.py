"""pytest fixtures for the fake LLM server (imported by tests/conftest.py).

def test_something(fake_llm):
    fake_llm.script(tool_call("web_search", {"q": "x"}), text("done"))
    config = ProviderConfig(provider="openai", model="gpt-4o", api_key="k",
                            base_url=fake_llm.openai_base_url)
    ...
    assert len(fake_llm.chat_requests) == 2
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.fakes.llm_server import FakeLLMServer
from bench.fakes.script import auto_responder

__all__ = ["FAKE_API_KEY", "fake_llm", "fake_llm_server", "fake_provider_config", "worker_env_for"]


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLMServer]:
    # One server per test session: starting one costs little, but SDK clients are cached per
    # base URL, and one URL keeps their keep-alive pools reused across tests.
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The session's fake server, with an empty script and request log for this test."""
    fake_llm_server.reset()
    fake_llm_server.latency_ms = 0
    fake_llm_server.responder = auto_responder
    yield fake_llm_server
    fake_llm_server.reset()


FAKE_API_KEY = "sk-fake-test-key-0123456789"


def worker_env_for(fake: FakeLLMServer, **extra: str) -> dict[str, str]:
    """Environment for a real worker process whose OpenAI SDK talks to ``fake``."""
    return {"OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": FAKE_API_KEY, **extra}


@pytest.fixture
def fake_provider_config(fake_llm: FakeLLMServer):
    """fake_provider_config("anthropic", model=..., **overrides) -> a ProviderConfig aimed at
    the fake server, with millisecond backoff so retry tests stay fast."""
    from executions.llm import ProviderConfig

    base_urls = {
        "openai": fake_llm.openai_base_url,
        "openai_compatible": fake_llm.openai_base_url,
        "groq": fake_llm.groq_base_url,
        "anthropic": fake_llm.anthropic_base_url,
        "sandbox": None,
    }
    default_models = {"openai": "gpt-4o", "anthropic": "claude-opus-4-6", "groq": "llama-3.3-70b-versatile"}

    def make(provider: str = "openai", **overrides) -> ProviderConfig:
        values = {
            "provider": provider,
            "model": default_models.get(provider, "fake-model"),
            "api_key": FAKE_API_KEY,
            "base_url": base_urls[provider],
            "timeout": 10,
            "max_retries": 2,
            "backoff_base": 0.001,
            "backoff_max": 0.05,
        }
        values.update(overrides)
        return ProviderConfig(**values)

    return make
