"""The fake provider server itself: it must be scriptable, honest about what it got, and fast."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from executions.llm import complete_with_fallback, get_client
from tests.fakes import FakeLLMServer, text

ROOT = Path(__file__).resolve().parents[2]


def test_server_settings_for_load(fake_llm):
    httpd = fake_llm._httpd
    assert httpd.request_queue_size >= 2048
    assert httpd.daemon_threads
    assert httpd.RequestHandlerClass.protocol_version == "HTTP/1.1"
    assert httpd.RequestHandlerClass.disable_nagle_algorithm


def test_request_log_drops_credentials(fake_llm, fake_provider_config):
    get_client(fake_provider_config("anthropic")).complete([{"role": "user", "content": "x"}])
    [request] = fake_llm.requests
    assert request.has_auth
    assert "x-api-key" not in request.headers
    assert "authorization" not in request.headers
    assert request.body["messages"][0]["role"] == "user"


def test_auto_responder_is_two_model_calls_one_tool_call(fake_llm, fake_provider_config):
    tool = {
        "name": "lookup",
        "description": "",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
    }
    for provider in ("openai", "anthropic", "groq"):
        client = get_client(fake_provider_config(provider))
        history = [{"role": "user", "content": "find 7"}]
        first = client.complete(history, tools=[tool])
        assert [(c.name, c.arguments) for c in first.tool_calls] == [("lookup", {"id": 1})]
        history += [first.as_message(), {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "seven"}]
        second = client.complete(history, tools=[tool])
        assert second.tool_calls == []
        assert second.content == "Done. The tool said: seven"
    assert (
        get_client(fake_provider_config("openai")).complete([{"role": "user", "content": "hi"}]).content == "Echo: hi"
    )


def test_custom_default_responder(fake_llm, fake_provider_config):
    fake_llm.responder = lambda chat: text(f"system was: {chat.system}")
    response = get_client(fake_provider_config("anthropic")).complete(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}]
    )
    assert response.content == "system was: Be brief."


def test_script_is_consumed_in_order_across_protocols(fake_llm, fake_provider_config):
    fake_llm.script(text("one"), text("two"))
    configs = [fake_provider_config("groq"), fake_provider_config("anthropic")]
    assert complete_with_fallback(configs, [{"role": "user", "content": "x"}]).response.content == "one"
    assert get_client(configs[1]).complete([{"role": "user", "content": "x"}]).content == "two"
    assert fake_llm.pending == 0


def test_latency_mode_delays_each_answer(fake_llm, fake_provider_config):
    fake_llm.latency_ms = 50
    client = get_client(fake_provider_config("openai"))
    started = time.perf_counter()
    client.complete([{"role": "user", "content": "x"}])
    assert time.perf_counter() - started >= 0.05


def test_many_concurrent_clients(fake_llm, fake_provider_config):
    fake_llm.latency_ms = 20
    client = get_client(fake_provider_config("openai"))
    failures: list[BaseException] = []

    def call() -> None:
        try:
            client.complete([{"role": "user", "content": "x"}])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(100)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    assert failures == []
    assert len(fake_llm.chat_requests) == 100
    # 100 calls of 20 ms each in parallel: far less than the 2 s they would take in series.
    assert elapsed < 1.5


def test_raw_http_keep_alive_and_health(fake_llm):
    connection = http.client.HTTPConnection("127.0.0.1", fake_llm.port, timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(3):
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "Echo: hi"
    connection.request("GET", "/health")
    assert connection.getresponse().read() == b'{"ok":true}'
    connection.request("POST", "/v1/unknown", "{}", {"Content-Type": "application/json"})
    assert connection.getresponse().status == 404
    connection.close()
    assert fake_llm.connection_count == 1


def test_streamed_openai_ends_with_done(fake_llm):
    connection = http.client.HTTPConnection("127.0.0.1", fake_llm.port, timeout=5)
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": []}
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.getheader("content-type") == "text/event-stream"
    events = [line for line in response.read().decode().split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    usage_chunk = json.loads(events[-2].removeprefix("data: "))
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0


def test_server_without_recording_still_counts():
    with FakeLLMServer(record=False) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/v1/embeddings", json.dumps({"input": "x", "model": "e"}))
        assert len(json.loads(connection.getresponse().read())["data"][0]["embedding"]) == 1536
        assert server.requests == []
        assert server.request_count == 1


def test_command_line_entry_point():
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fakes.llm_server", "--port", "0", "--latency-ms", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "fake LLM listening on http://127.0.0.1:" in line
        port = int(line.split(":")[2].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/_fake/stats")
        assert json.loads(connection.getresponse().read()) == {"requests": 0, "connections": 1, "pending": 0}
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_bad_json_is_a_400_in_the_provider_shape(fake_llm, path):
    connection = http.client.HTTPConnection("127.0.0.1", fake_llm.port, timeout=5)
    connection.request("POST", path, "not json", {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400
    body = json.loads(response.read())
    assert body["error"]["message"]
    if path == "/v1/messages":
        assert body["type"] == "error"
