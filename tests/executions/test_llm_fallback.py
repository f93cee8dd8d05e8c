"""Fallback across providers, and the registry's client cache and environment handling."""

from __future__ import annotations

import pytest

from executions.llm import (
    LLMAuthError,
    LLMBadRequest,
    LLMConfigurationError,
    LLMProviderUnavailable,
    ProviderConfig,
    clear_client_cache,
    complete_with_fallback,
    get_client,
    stream_with_fallback,
)
from executions.llm.registry import should_fall_back
from tests.fakes import error, text

USER = [{"role": "user", "content": "hello"}]


def test_first_provider_500s_second_answers(fake_llm, fake_provider_config):
    fake_llm.script(error(500), error(500), text("anthropic here"))
    configs = [fake_provider_config("openai", max_retries=1), fake_provider_config("anthropic")]

    result = complete_with_fallback(configs, USER, temperature=0.1)

    assert result.response.content == "anthropic here"
    assert result.response.provider == "anthropic"
    assert result.config is configs[1]
    assert [(a.config.provider, type(a.error).__name__ if a.error else None) for a in result.attempts] == [
        ("openai", "LLMProviderUnavailable"),
        ("anthropic", None),
    ]
    assert result.attempts[0].error.attempts == 2
    assert all(a.latency_ms > 0 for a in result.attempts)
    assert [r.path for r in fake_llm.chat_requests] == ["/v1/chat/completions"] * 2 + ["/v1/messages"]


def test_fallback_in_order_through_three_providers(fake_llm, fake_provider_config):
    fake_llm.script(error(429), error(401), text("groq answers"))
    configs = [
        fake_provider_config("openai", max_retries=0),
        fake_provider_config("anthropic"),
        fake_provider_config("groq", model="llama-3.1-8b-instant"),
    ]

    result = complete_with_fallback(configs, USER)

    assert result.config.provider == "groq"
    assert result.response.model == "llama-3.1-8b-instant"
    assert [type(a.error).__name__ if a.error else "ok" for a in result.attempts] == [
        "LLMRateLimited",
        "LLMAuthError",
        "ok",
    ]


def test_first_success_does_not_touch_the_others(fake_llm, fake_provider_config):
    result = complete_with_fallback([fake_provider_config("openai"), fake_provider_config("anthropic")], USER)
    assert result.config.provider == "openai"
    assert len(result.attempts) == 1
    assert len(fake_llm.chat_requests) == 1


def test_bad_request_stops_the_fallback(fake_llm, fake_provider_config):
    fake_llm.script(error(400, "messages: invalid"), text("must not be used"))
    configs = [fake_provider_config("openai"), fake_provider_config("anthropic")]

    with pytest.raises(LLMBadRequest) as caught:
        complete_with_fallback(configs, USER)

    assert [a.config.provider for a in caught.value.fallback_attempts] == ["openai"]
    assert len(fake_llm.chat_requests) == 1


def test_unknown_model_404_falls_back(fake_llm, fake_provider_config):
    fake_llm.script(error(404, "model not found"), text("second"))
    result = complete_with_fallback([fake_provider_config("openai"), fake_provider_config("groq")], USER)
    assert result.response.content == "second"


def test_all_failing_raises_the_last_error_with_every_attempt(fake_llm, fake_provider_config):
    fake_llm.script(error(500), error(503))
    configs = [fake_provider_config("openai", max_retries=0), fake_provider_config("anthropic", max_retries=0)]

    with pytest.raises(LLMProviderUnavailable) as caught:
        complete_with_fallback(configs, USER)

    assert caught.value.provider == "anthropic"
    assert [(a.config.provider, a.error.status_code) for a in caught.value.fallback_attempts] == [
        ("openai", 500),
        ("anthropic", 503),
    ]


def test_an_unusable_config_falls_back(fake_llm, fake_provider_config):
    configs = [
        ProviderConfig(provider="openai_compatible", model="llama3.2"),  # no base_url
        ProviderConfig(provider="no_such_provider", model="x"),
        fake_provider_config("openai"),
    ]
    result = complete_with_fallback(configs, USER)
    assert result.config.provider == "openai"
    assert [type(a.error).__name__ for a in result.attempts[:2]] == ["LLMConfigurationError"] * 2


def test_no_configs_is_a_configuration_error():
    with pytest.raises(LLMConfigurationError):
        complete_with_fallback([], USER)


def test_should_fall_back_policy():
    assert should_fall_back(LLMProviderUnavailable("x"))
    assert should_fall_back(LLMAuthError("x"))
    assert should_fall_back(LLMBadRequest("x", status_code=404))
    assert not should_fall_back(LLMBadRequest("x", status_code=400))


def test_stream_falls_back_before_the_first_event(fake_llm, fake_provider_config):
    fake_llm.script(error(503), text("streamed by anthropic"))
    configs = [fake_provider_config("openai", max_retries=0), fake_provider_config("anthropic")]

    events = list(stream_with_fallback(configs, USER))

    done = events[-1].response
    assert (done.provider, done.content) == ("anthropic", "streamed by anthropic")
    assert "".join(e.text for e in events if e.type == "text") == "streamed by anthropic"


def test_stream_fallback_exhausted_raises(fake_llm, fake_provider_config):
    fake_llm.script(error(500), error(500))
    configs = [fake_provider_config("groq", max_retries=0), fake_provider_config("openai", max_retries=0)]
    with pytest.raises(LLMProviderUnavailable) as caught:
        list(stream_with_fallback(configs, USER))
    assert len(caught.value.fallback_attempts) == 2


# -- registry ------------------------------------------------------------------------------


def test_sdk_clients_are_cached_per_endpoint_and_key(fake_provider_config):
    first = get_client(fake_provider_config("openai", model="gpt-4o"))
    same = get_client(fake_provider_config("openai", model="gpt-4o-mini", timeout=5))
    other_key = get_client(fake_provider_config("openai", api_key="sk-another-key-000000"))
    other_provider = get_client(fake_provider_config("groq"))

    assert first.sdk is same.sdk  # model and timeout are per request, the pool is shared
    assert same.config.model == "gpt-4o-mini"
    assert other_key.sdk is not first.sdk
    assert other_provider.sdk is not first.sdk


def test_connections_are_kept_alive_across_calls(fake_llm, fake_provider_config):
    clear_client_cache()
    client = get_client(fake_provider_config("openai"))
    for _ in range(5):
        client.complete(USER)
    for _ in range(3):
        get_client(fake_provider_config("openai")).complete(USER)

    assert len(fake_llm.chat_requests) == 8
    assert fake_llm.connection_count == 1


def test_environment_variables_are_honoured(fake_llm, monkeypatch):
    clear_client_cache()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-1234567")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.anthropic_base_url)
    monkeypatch.setenv("GROQ_API_KEY", "gsk_from_env_1234567")
    monkeypatch.setenv("GROQ_BASE_URL", fake_llm.groq_base_url)

    for provider in ("openai", "anthropic", "groq"):
        client = get_client(ProviderConfig(provider=provider, model="m", backoff_base=0.001))
        assert client.complete(USER).provider == provider

    assert [r.path for r in fake_llm.chat_requests] == [
        "/v1/chat/completions",
        "/v1/messages",
        "/openai/v1/chat/completions",
    ]
    assert all(r.has_auth for r in fake_llm.chat_requests)


def test_explicit_values_override_the_environment(fake_llm, monkeypatch):
    clear_client_cache()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    config = ProviderConfig(
        provider="openai", model="m", api_key="sk-explicit-123456", base_url=fake_llm.openai_base_url
    )
    assert get_client(config).complete(USER).content
    assert get_client(config).sdk.api_key == "sk-explicit-123456"


@pytest.mark.parametrize(("provider", "variable"), [("openai", "OPENAI_API_KEY"), ("groq", "GROQ_API_KEY")])
def test_missing_key_is_an_auth_error(monkeypatch, provider, variable):
    clear_client_cache()
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(LLMAuthError) as caught:
        get_client(ProviderConfig(provider=provider, model="m"))
    assert caught.value.provider == provider


def test_unknown_provider_is_a_configuration_error():
    with pytest.raises(LLMConfigurationError, match="unknown LLM provider"):
        get_client(ProviderConfig(provider="skynet", model="t-800"))


def test_unreachable_provider_is_unavailable(fake_provider_config):
    config = fake_provider_config("openai", base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(LLMProviderUnavailable) as caught:
        get_client(config).complete(USER)
    assert caught.value.code == "connection_error"
    assert caught.value.attempts == 2
