"""POST hooks/{agent_id}/: signatures (missing, wrong, stale, replayed), the secret shown once,
what a valid call starts, and nothing saved or run for a bad one."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from executions.models import AgentHookSecret, Execution, TriggerAttempt
from tests.conftest import assert_error
from tests.triggers.conftest import signed


@pytest.fixture
def hooked(alice, active_agent, client_for):
    """An active agent with a hook secret made through the API: (agent, secret)."""

    def make(**fields):
        agent = active_agent(**fields)
        response = client_for(alice).post(f"/api/v1/agents/{agent.pk}/hook-secret/")
        assert response.status_code == 201, response.content
        return agent, response.json()["secret"]

    return make


def _hook(agent_id, body: bytes, headers: dict):
    return Client().post(f"/api/v1/hooks/{agent_id}/", body, content_type="application/json", **headers)


def test_a_signed_call_starts_a_webhook_run(hooked):
    agent, secret = hooked()
    body, headers = signed({"task": "Process order 42", "context": {"order": 42}}, secret)
    response = _hook(agent.pk, body, headers)
    assert response.status_code == 202, response.content
    run = Execution.objects.get(pk=response.json()["execution"]["id"])
    assert run.trigger_type == "webhook" and run.agent_id == agent.pk
    assert run.input == {"task": "Process order 42", "context": {"order": 42}}
    assert run.triggered_by_user_id is None


def test_a_body_without_task_is_the_context(hooked):
    agent, secret = hooked()
    body, headers = signed({"order": 7, "status": "paid"}, secret)
    run = Execution.objects.get(pk=_hook(agent.pk, body, headers).json()["execution"]["id"])
    assert run.input["context"] == {"order": 7, "status": "paid"} and agent.name in run.input["task"]


def test_the_secret_is_shown_once_and_rotation_invalidates_the_old_one(alice, hooked, client_for):
    agent, secret = hooked()
    info = client_for(alice).get(f"/api/v1/agents/{agent.pk}/hook-secret/").json()
    assert info["has_secret"] and info["secret_last4"] == secret[-4:] and "secret" not in info
    assert info["url"].endswith(f"/api/v1/hooks/{agent.pk}/")
    assert secret not in json.dumps(info)
    stored = AgentHookSecret.objects.filter(agent=agent).values_list("secret", flat=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM executions_agenthooksecret WHERE agent_id = %s", [agent.pk])
        assert cursor.fetchone()[0] != secret  # encrypted at rest
    assert list(stored) == [secret]
    new = client_for(alice).post(f"/api/v1/agents/{agent.pk}/hook-secret/").json()["secret"]
    assert new != secret
    body, headers = signed({"x": 1}, secret)
    assert_error(_hook(agent.pk, body, headers), 401, "InvalidToken")
    body, headers = signed({"x": 1}, new)
    assert _hook(agent.pk, body, headers).status_code == 202


def test_unsigned_wrongly_signed_stale_and_replayed_calls_run_nothing(hooked):
    agent, secret = hooked()
    body, headers = signed({"task": "x"}, secret)
    assert_error(_hook(agent.pk, body, {}), 401, "NotAuthenticated")
    assert_error(
        _hook(agent.pk, body, {"HTTP_X_AGENTRY_TIMESTAMP": headers["HTTP_X_AGENTRY_TIMESTAMP"]}),
        401,
        "NotAuthenticated",
    )
    # Signed with another secret; the body changed after signing; the timestamp changed.
    _, other = signed({"task": "x"}, "whsec_not-the-secret")
    assert_error(_hook(agent.pk, body, other), 401, "InvalidToken")
    assert_error(_hook(agent.pk, b'{"task": "y"}', headers), 401, "InvalidToken")
    moved = {**headers, "HTTP_X_AGENTRY_TIMESTAMP": str(int(headers["HTTP_X_AGENTRY_TIMESTAMP"]) + 1)}
    assert_error(_hook(agent.pk, body, moved), 401, "InvalidToken")
    stale_body, stale = signed({"task": "x"}, secret, timestamp=int(time.time()) - 3600)
    assert "timestamp" in assert_error(_hook(agent.pk, stale_body, stale), 401, "InvalidToken")["message"]
    future_body, future = signed({"task": "x"}, secret, timestamp=int(time.time()) + 3600)
    assert_error(_hook(agent.pk, future_body, future), 401, "InvalidToken")
    assert_error(_hook(agent.pk, body, {**headers, "HTTP_X_AGENTRY_TIMESTAMP": "soon"}), 401, "InvalidToken")
    assert not Execution.objects.exists()
    # The good call works once; the same request again is a replay.
    assert _hook(agent.pk, body, headers).status_code == 202
    assert_error(_hook(agent.pk, body, headers), 409, "Conflict")
    assert Execution.objects.count() == 1


@pytest.mark.parametrize("stamp", ["\u00b2", "17\u00b2", "\u0661\u0662"])
def test_a_timestamp_of_digits_that_are_not_ascii_is_refused_not_a_crash(hooked, stamp):
    """str.isdigit() says yes to "\u00b2" (which int() refuses: it was a 500) and to other
    scripts' digits; a Unix time is ASCII digits."""
    agent, secret = hooked()
    body, headers = signed({"task": "x"}, secret)
    error = assert_error(_hook(agent.pk, body, {**headers, "HTTP_X_AGENTRY_TIMESTAMP": stamp}), 401, "InvalidToken")
    assert "Unix time" in error["message"]
    assert not Execution.objects.exists()


def test_even_a_forgotten_signature_never_starts_a_second_run(hooked):
    from django.core.cache import cache

    agent, secret = hooked()
    body, headers = signed({"task": "once"}, secret)
    first = _hook(agent.pk, body, headers).json()["execution"]["id"]
    cache.clear()  # Redis lost what it remembered
    again = _hook(agent.pk, body, headers)
    assert again.status_code == 200 and again.json()["started"] is False
    assert again.json()["execution"]["id"] == first and Execution.objects.count() == 1


def test_unknown_agents_and_agents_without_a_secret_look_the_same(org, hooked, active_agent, other_active_agent):
    _, secret = hooked()
    plain = active_agent(name="No secret")
    theirs = other_active_agent()
    body, headers = signed({"task": "x"}, secret)
    for agent_id in (plain.pk, theirs.pk, "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert_error(_hook(agent_id, body, headers), 404, "AgentNotFound")
    assert not Execution.objects.exists()


def test_inactive_agents_bad_bodies_and_conditions(owner_actor, hooked):
    from agents.services import agent_deactivate

    agent, secret = hooked(trigger_conditions={"payload.kind": "order"})
    body, headers = signed([1, 2, 3], secret)
    assert_error(_hook(agent.pk, body, headers), 400, "InvalidInput")
    body, headers = signed(b"not json", secret)
    assert_error(_hook(agent.pk, body, headers), 400, "InvalidInput")
    body, headers = signed({"kind": "refund"}, secret)
    skipped = _hook(agent.pk, body, headers)
    assert skipped.status_code == 200 and skipped.json()["started"] is False
    assert not Execution.objects.exists()
    agent_deactivate(actor=owner_actor, agent=agent)
    body, headers = signed({"kind": "order"}, secret)
    assert_error(_hook(agent.pk, body, headers), 409, "Conflict")
    assert not Execution.objects.exists()


def test_nul_characters_and_deep_nesting_in_a_hook_body_are_400s(hooked):
    # The hook reads its raw body itself (the signature covers the bytes): the parser's bounds
    # apply here too. Both were 500s (PostgreSQL refusing NUL, Python's decoder recursing).
    agent, secret = hooked()
    for raw, field in (
        (json.dumps({"task": "Go", "context": {"note": "a\u0000b"}}).encode(), "context.note"),
        (json.dumps({"order\u0000": 1}).encode(), "order\\u0000"),
        (b'{"deep": ' + b"[" * 1000 + b"]" * 1000 + b"}", "body"),
    ):
        body, headers = signed(raw, secret)
        error = assert_error(_hook(agent.pk, body, headers), 400, "InvalidInput")
        assert list(error["details"]["validation_errors"]) == [field], error
    assert not Execution.objects.exists() and not TriggerAttempt.objects.exists()


def test_over_the_limit_the_hook_answers_429_and_records_the_attempt(hooked):
    agent, secret = hooked(limits={"max_runs_per_day": 1})
    body, headers = signed({"n": 1}, secret)
    assert _hook(agent.pk, body, headers).status_code == 202
    body, headers = signed({"n": 2}, secret)
    error = assert_error(_hook(agent.pk, body, headers), 429, "ResourceExhausted")
    attempt = TriggerAttempt.objects.get(pk=error["details"]["attempt_id"])
    assert attempt.trigger_type == "webhook" and attempt.agent_id == agent.pk
    assert Execution.objects.count() == 1


def test_who_may_see_and_rotate_hook_secrets(org, mia, vic, oscar, hooked, client_for):
    agent, _ = hooked()
    url = f"/api/v1/agents/{agent.pk}/hook-secret/"
    assert client_for(vic).get(url).status_code == 200
    assert_error(client_for(vic).post(url), 403, "InsufficientPermissions")
    assert_error(client_for(mia).post(url), 403, "InsufficientPermissions")  # not her agent
    assert_error(client_for(oscar).get(url), 404, "AgentNotFound")
    assert_error(client_for(oscar).post(url), 404, "AgentNotFound")
