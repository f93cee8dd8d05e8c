"""A provider that answers HTTP 200 with something other than its protocol's answer (security
issue #14, M3): every adapter turns it into a clear ``LLMInvalidResponse``, retried and then
handed to the next fallback; a run sees a provider error and ends, it never stays running.

The answers come from a real HTTP server on 127.0.0.1 through the real SDKs, in both the
plain and the streaming paths.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from executions.llm import LLMInvalidResponse, ProviderConfig, complete_with_fallback, get_client
from executions.llm.registry import clear_client_cache
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.fakes import text
from tests.fakes.http_fakes import FakeHttpServer

USER = [{"role": "user", "content": "hello"}]
PATHS = {
    "openai": "/v1/chat/completions",
    "openai_compatible": "/v1/chat/completions",
    "groq": "/openai/v1/chat/completions",
    "anthropic": "/v1/messages",
}
HTML = "<!doctype html><html><head><title>Sign in</title></head><body><form>login</form></body></html>"

# (name, route keyword arguments) answered with HTTP 200, per protocol family.
OPENAI_ANSWERS = [
    ("html", {"text": HTML}),
    ("json-without-choices", {"json": {"hello": "world"}}),
    ("json-list", {"json": [1, 2, 3]}),
    ("choices-of-the-wrong-type", {"json": {"choices": [1]}}),
    ("message-of-the-wrong-type", {"json": {"choices": [{"message": "hi", "finish_reason": "stop"}]}}),
    ("content-of-the-wrong-type", {"json": {"choices": [{"message": {"content": {"a": 1}}, "finish_reason": "stop"}]}}),
    ("empty-choices", {"json": {"id": "x", "choices": []}}),
    (
        "truncated-json",
        {"text": '{"id": "chatcmpl-1", "choices": [{"message": {"content": "hal', "content_type": "application/json"},
    ),
]
ANTHROPIC_ANSWERS = [
    ("html", {"text": HTML}),
    ("json-without-content", {"json": {"hello": "world"}}),
    ("json-list", {"json": [1, 2, 3]}),
    ("content-of-the-wrong-type", {"json": {"type": "message", "content": "hi", "stop_reason": "end_turn"}}),
    ("blocks-of-the-wrong-type", {"json": {"type": "message", "content": [1], "stop_reason": "end_turn"}}),
    ("text-of-the-wrong-type", {"json": {"content": [{"type": "text", "text": 5}], "stop_reason": "end_turn"}}),
    (
        "truncated-json",
        {"text": '{"id": "msg_1", "content": [{"type": "text", "text": "hal', "content_type": "application/json"},
    ),
]
STREAM_ANSWERS = [
    ("html", {"text": HTML}),
    (
        "events-of-another-shape",
        {"text": 'data: {"hello": "world"}\n\ndata: [DONE]\n\n', "content_type": "text/event-stream"},
    ),
    ("truncated-event", {"text": 'data: {"id": "x", "choi\n\n', "content_type": "text/event-stream"}),
    ("cut-off-stream", {"text": None, "content_type": "text/event-stream"}),  # filled per protocol below
]
CUT_OFF = {
    # Text arrives, then the stream ends without a finish reason / message_stop.
    "openai": 'data: {"id": "c1", "choices": [{"index": 0, "delta": {"content": "half an ans"}, "finish_reason": null}]}\n\n',
    "anthropic": (
        'event: message_start\ndata: {"type": "message_start", "message": {"id": "m1", "model": "x", "usage": {"input_tokens": 3, "output_tokens": 0}}}\n\n'
        'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}\n\n'
        'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "half an ans"}}\n\n'
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as fake:
        yield fake
    clear_client_cache()


def config(server: FakeHttpServer, provider: str, **overrides) -> ProviderConfig:
    base = server.base_url + ("/v1" if provider in ("openai", "openai_compatible") else "")
    values = {"provider": provider, "model": "some-model", "api_key": "sk-test-123456", "base_url": base,
              "timeout": 5, "max_retries": 1, "backoff_base": 0.001, "backoff_max": 0.01}  # fmt: skip
    values.update(overrides)
    return ProviderConfig(**values)


def _cases(stream: bool) -> list:
    cases = []
    for provider in ("openai", "groq", "openai_compatible", "anthropic"):
        family = "anthropic" if provider == "anthropic" else "openai"
        answers = STREAM_ANSWERS if stream else (ANTHROPIC_ANSWERS if family == "anthropic" else OPENAI_ANSWERS)
        for name, route in answers:
            if route.get("text", "") is None:
                route = {**route, "text": CUT_OFF[family]}
            cases.append(pytest.param(provider, route, id=f"{provider}-{name}"))
    return cases


@pytest.mark.parametrize(("provider", "route"), _cases(stream=False))
def test_an_answer_that_is_not_the_protocols_is_a_clear_provider_error(server, provider, route):
    server.reset()
    server.route("POST", PATHS[provider], **route)

    with pytest.raises(LLMInvalidResponse) as caught:
        get_client(config(server, provider)).complete(USER)

    failure = caught.value
    assert failure.provider == provider and failure.retryable
    assert "answer" in failure.message and len(str(failure)) < 400
    assert "<" not in str(failure)  # an HTML page is never copied into the error
    assert len(server.requests) == 2  # retried once (max_retries=1), then given up


@pytest.mark.parametrize(("provider", "route"), _cases(stream=True))
def test_a_stream_that_is_not_the_protocols_is_a_clear_provider_error(server, provider, route):
    server.reset()
    server.route("POST", PATHS[provider], **route)

    with pytest.raises(LLMInvalidResponse) as caught:
        list(get_client(config(server, provider)).stream(USER))

    assert caught.value.provider == provider
    assert "<" not in str(caught.value)


def test_the_next_fallback_answers_after_an_invalid_answer(server, fake_llm, fake_provider_config):
    server.reset()
    server.route("POST", PATHS["openai"], text=HTML)
    fake_llm.script(text("from the fallback"))

    result = complete_with_fallback([config(server, "openai"), fake_provider_config("anthropic")], USER)

    assert result.response.content == "from the fallback"
    assert [type(a.error).__name__ if a.error else None for a in result.attempts] == ["LLMInvalidResponse", None]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fallback", [False, True])
def test_a_run_whose_provider_answers_html_ends_instead_of_staying_running(
    org, make_agent, server, providers_at_fake, settings, fallback
):
    # The platform's OpenAI endpoint (an operator's base URL) answers a login page with 200.
    server.reset()
    server.route("POST", PATHS["openai"], text=HTML)
    settings.PROVIDER_ENV = {
        **settings.PROVIDER_ENV,
        "openai": {"api_key": "sk-x-123456", "base_url": server.base_url + "/v1"},
    }
    providers_at_fake.script(text("the fallback answered"))
    model_config = {"provider": "openai", "model": "gpt-4o"}
    if fallback:
        model_config["fallbacks"] = [{"provider": "anthropic", "model": "claude-haiku-4-5"}]
    agent = make_agent(model_config=model_config)
    execution, _ = execution_start(agent=agent, organization=org, task="hello")

    run_execution(execution.pk)

    execution = Execution.objects.get(pk=execution.pk)
    if fallback:
        assert execution.status == "completed", execution.error
        assert execution.steps.get(step_type="think").provider == "anthropic"
    else:
        assert (execution.status, execution.error_code) == ("failed", "ExecutionFailed")
        assert execution.error_details["provider_error"] == "LLMInvalidResponse"
        assert "not a chat completion" in execution.error and "<" not in execution.error
        assert execution.lease_owner == "" and execution.llm_calls == 0
        think = execution.steps.get(step_type="think")
        assert think.status == "failed" and think.is_error


@pytest.mark.parametrize("provider", ["openai", "openai_compatible"])
@pytest.mark.parametrize(
    "route",
    [
        {"text": HTML},
        {"json": {"object": "list", "data": "nope"}},
        {"json": {"object": "list", "data": [{"index": 0, "embedding": "abc"}]}},
        {"json": {"object": "list", "data": []}},  # one text sent, no vector back
    ],
    ids=["html", "data-not-a-list", "vector-not-numbers", "too-few-vectors"],
)
def test_an_embeddings_answer_of_another_shape_is_a_clear_provider_error(server, provider, route):
    server.reset()
    server.route("POST", "/v1/embeddings", **route)

    with pytest.raises(LLMInvalidResponse) as caught:
        get_client(config(server, provider, max_retries=0)).embed(["hello"], model="text-embedding-3-small")

    assert "embeddings" in str(caught.value) and "<" not in str(caught.value)
