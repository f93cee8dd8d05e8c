"""Retries, error translation and secrets, against the fake server over real HTTP."""

from __future__ import annotations

import pickle
import traceback

import pytest

from executions.llm import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMProviderUnavailable,
    LLMRateLimited,
    get_client,
)
from tests.fakes import Disconnect, Reply, error, text

USER = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "openai_compatible"])
def test_429_then_success_is_retried(fake_llm, fake_provider_config, provider):
    fake_llm.script(error(429, "slow down"), text("ok after retry"))

    response = get_client(fake_provider_config(provider)).complete(USER)

    assert response.content == "ok after retry"
    assert len(fake_llm.chat_requests) == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
def test_500_exhausting_retries_raises_provider_unavailable(fake_llm, fake_provider_config, provider):
    fake_llm.script(*[error(500, "boom")] * 3, text("never reached"))

    with pytest.raises(LLMProviderUnavailable) as caught:
        get_client(fake_provider_config(provider, max_retries=2)).complete(USER)

    failure = caught.value
    assert (failure.provider, failure.status_code, failure.retryable, failure.attempts) == (provider, 500, True, 3)
    assert "boom" in str(failure)
    assert len(fake_llm.chat_requests) == 3
    assert fake_llm.pending == 1


def test_max_retries_zero_means_one_attempt(fake_llm, fake_provider_config):
    fake_llm.script(error(503), text("unused"))
    with pytest.raises(LLMProviderUnavailable):
        get_client(fake_provider_config("openai", max_retries=0)).complete(USER)
    assert len(fake_llm.chat_requests) == 1


def test_anthropic_overloaded_529_is_retryable(fake_llm, fake_provider_config):
    fake_llm.script(error(529, "Overloaded"), text("fine"))
    assert get_client(fake_provider_config("anthropic")).complete(USER).content == "fine"
    assert len(fake_llm.chat_requests) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, LLMBadRequest), (404, LLMBadRequest), (422, LLMBadRequest), (401, LLMAuthError), (403, LLMAuthError)],
)
def test_client_errors_are_not_retried(fake_llm, fake_provider_config, status, expected):
    fake_llm.script(error(status, "nope"), text("unused"))

    with pytest.raises(expected) as caught:
        get_client(fake_provider_config("openai")).complete(USER)

    assert caught.value.status_code == status
    assert caught.value.retryable is False
    assert len(fake_llm.chat_requests) == 1


def test_insufficient_quota_429_is_not_retried(fake_llm, fake_provider_config):
    fake_llm.script(error(429, "You exceeded your current quota", code="insufficient_quota"), text("unused"))
    with pytest.raises(LLMRateLimited) as caught:
        get_client(fake_provider_config("openai")).complete(USER)
    assert (caught.value.retryable, caught.value.code) == (False, "insufficient_quota")
    assert len(fake_llm.chat_requests) == 1


def test_retry_after_is_honoured_up_to_the_cap(fake_llm, fake_provider_config):
    fake_llm.script(error(429, retry_after=0.02), text("ok"))
    assert get_client(fake_provider_config("openai", backoff_max=1)).complete(USER).content == "ok"

    # A Retry-After longer than backoff_max: give up now, let fallback try another provider.
    fake_llm.script(error(429, retry_after=30), text("unused"))
    with pytest.raises(LLMRateLimited) as caught:
        get_client(fake_provider_config("openai", backoff_max=1)).complete(USER)
    assert caught.value.retry_after == 30
    assert len(fake_llm.chat_requests) == 3


def test_dropped_connection_is_retried(fake_llm, fake_provider_config):
    fake_llm.script(Disconnect(), text("reconnected"))
    assert get_client(fake_provider_config("openai")).complete(USER).content == "reconnected"
    assert len(fake_llm.chat_requests) == 2


def test_timeout_raises_provider_unavailable(fake_llm, fake_provider_config):
    fake_llm.script(Reply(text="too late", delay_ms=1500))
    with pytest.raises(LLMProviderUnavailable) as caught:
        get_client(fake_provider_config("anthropic", timeout=0.3, max_retries=0)).complete(USER)
    assert caught.value.code == "timeout"
    assert "timed out" in str(caught.value)


def test_stream_retries_before_the_first_event(fake_llm, fake_provider_config):
    fake_llm.script(error(500), text("streamed fine"))
    events = list(get_client(fake_provider_config("openai")).stream(USER))
    assert events[-1].response.content == "streamed fine"
    assert len(fake_llm.chat_requests) == 2


def test_stream_error_after_retries(fake_llm, fake_provider_config):
    fake_llm.script(error(500), error(500))
    with pytest.raises(LLMProviderUnavailable):
        list(get_client(fake_provider_config("anthropic", max_retries=1)).stream(USER))
    assert len(fake_llm.chat_requests) == 2


def test_embedding_errors_are_translated_and_retried(fake_llm, fake_provider_config):
    fake_llm.script_embeddings(error(503))
    result = get_client(fake_provider_config("openai")).embed(["x"])
    assert len(result.vectors) == 1
    assert len(fake_llm.requests_to("/embeddings")) == 2

    fake_llm.script_embeddings(error(400, "bad model"))
    with pytest.raises(LLMBadRequest, match="bad model"):
        get_client(fake_provider_config("openai")).embed(["x"])


def test_api_key_never_appears_in_errors_or_reprs(fake_llm, fake_provider_config):
    secret = "plain-secret-value-4242"  # not key-shaped: only exact redaction can catch it
    key_shaped = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV123"
    fake_llm.script(error(401, f"Incorrect API key provided: {secret}. Also seen: {key_shaped}"))
    config = fake_provider_config("openai", api_key=secret)
    client = get_client(config)

    with pytest.raises(LLMAuthError) as caught:
        client.complete(USER)

    failure = caught.value
    rendered = [
        str(failure),
        repr(failure),
        failure.message,
        "".join(traceback.format_exception(failure)),
        repr(config),
        repr(client),
        str(config),
    ]
    for text_ in rendered:
        assert secret not in text_
        assert key_shaped not in text_
    assert "Incorrect API key provided" in str(failure)


def test_errors_survive_pickling_for_celery(fake_llm, fake_provider_config):
    fake_llm.script(error(429, "later", retry_after=0.01), error(429), error(429))
    with pytest.raises(LLMRateLimited) as caught:
        get_client(fake_provider_config("groq", max_retries=2)).complete(USER)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, LLMRateLimited)
    assert isinstance(copy, LLMError)
    assert (copy.provider, copy.status_code, copy.retryable, copy.attempts) == ("groq", 429, True, 3)
    assert str(copy) == str(caught.value)
