"""The OpenAPI schema fuzzed with schemathesis (DESIGN.md §13): no 5xx, every error in the
error shape of §11.

Runs in-process against the WSGI application with an owner's bearer token, a few seeded
examples per operation (valid and invalid input), each request in a savepoint that is rolled
back so that the examples do not depend on one another.
"""

from __future__ import annotations

import json
import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from agents.services.agents import agent_create
from agents.services.versions import agent_publish

EXAMPLES_PER_MODE = 3
ERROR_KEYS = {"code", "message", "details", "timestamp", "request_id"}


def error_shape_problem(response) -> str | None:
    """None when a 4xx/5xx body is {"error": {code, message, details, timestamp, request_id}}."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return "the body is not JSON"
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return "the body is not {'error': {...}}"
    error = body["error"]
    if set(error) != ERROR_KEYS:
        return f"the error has the keys {sorted(error)}"
    if not error["code"] or not error["message"] or not error["request_id"]:
        return "an empty code, message or request_id"
    if not isinstance(error["details"], dict):
        return "details is not an object"
    return None


def test_error_shape_problem_catches_bad_bodies():
    class Fake:
        def __init__(self, status_code, content):
            self.status_code, self.content = status_code, content

    good = {"error": {"code": "InvalidInput", "message": "m", "details": {}, "timestamp": "t", "request_id": "r"}}
    assert error_shape_problem(Fake(400, json.dumps(good).encode())) is None
    assert error_shape_problem(Fake(200, b"<html>")) is None
    assert error_shape_problem(Fake(404, b"<h1>Not Found</h1>")) == "the body is not JSON"
    assert error_shape_problem(Fake(400, b'{"detail": "x"}')) == "the body is not {'error': {...}}"


def fuzz(operation, mode, headers: dict) -> list[dict]:
    """The first failing example of ``operation`` in ``mode``, if any."""
    found: list[dict] = []

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        if found:
            return  # one example per operation and mode is enough to report
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        problem = "server error" if response.status_code >= 500 else error_shape_problem(response)
        if problem:
            body = case.body[:200] if isinstance(case.body, bytes) else case.body
            found.append(
                {
                    "operation": operation.label,
                    "mode": mode.value,
                    "status": response.status_code,
                    "problem": problem,
                    "request": {"path": case.formatted_path, "query": case.query, "body": body},
                    "response": response.content[:300],
                }
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (no parameters, no body).
        assert mode == GenerationMode.NEGATIVE, operation.label
    return found


@pytest.fixture
def wsgi_in_test_transaction():
    """The real WSGI handler would close the test's connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_schema_fuzzed_without_server_errors(org, alice, owner_actor, client_for, wsgi_in_test_transaction):
    # Something to find: a published agent (its id is in lists) besides whatever the cases make.
    agent = agent_create(actor=owner_actor, data={"name": "Fuzzed", "system_prompt": "You are a test agent."})
    agent_publish(actor=owner_actor, agent=agent)
    token = client_for(alice).raw_token
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(raw, default=str)))
    schema.app = wsgi_in_test_transaction
    headers = {"Authorization": f"Bearer {token}"}

    failures: list[dict] = []
    timings: list[tuple] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started = time.monotonic()
            failures.extend(fuzz(operation, mode, headers))
            timings.append((round(time.monotonic() - started, 2), operation.label, mode.value))
    assert operations > 100
    print("slowest", sorted(timings, reverse=True)[:5])
    summary = [f"{f['operation']} [{f['mode']}] {f['status']} {f['problem']}: {f['request']}" for f in failures]
    assert not failures, "\n".join(summary)
