"""Secrets canaries (DESIGN.md §13): a provider key, an environment key and an API token are
planted, a run goes through the real SDK, and then every API response, admin page, log line
and LLM request is searched for them."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.contrib import admin
from django.urls import reverse

from agents.services.connections import provider_connection_create
from bench.fakes.script import text, tool_call
from executions.runtime.loop import run_execution
from executions.services import execution_start

pytestmark = pytest.mark.django_db(transaction=True)

KEY_CANARY = "sk-canary-provider-7c3e9a1f5d2b"
ENV_CANARY = "sk-canary-environment-41d0be77"
PARAM = re.compile(r"\{[^}]+\}")


def _get_paths(schema: dict) -> list[str]:
    return [path for path, ops in schema["paths"].items() if "get" in ops]


def test_secrets_never_leave_their_vault(
    org, alice, owner_actor, make_agent, fake_llm, echo_tool, client_for, client, settings, caplog, django_user_model
):
    caplog.set_level(logging.DEBUG)
    settings.PROVIDER_ENV = {"openai": {"api_key": ENV_CANARY, "base_url": fake_llm.openai_base_url}}
    settings.AGENTRY_SSRF_ALLOW = [fake_llm.allow_entry]  # the organization's base URL is the fake
    connection = provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "api_key": KEY_CANARY, "base_url": fake_llm.openai_base_url, "is_default": True},
    )
    api = client_for(alice)
    token_canary = api.raw_token
    agent = make_agent(allowed_tools=["echo"])
    fake_llm.script(tool_call("echo", {"text": "hello"}), text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Say hello")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    canaries = [KEY_CANARY, ENV_CANARY, token_canary, connection.api_key_encrypted]

    seen: list[tuple[str, str]] = []
    # Every GET of the API, with the ids of what this test made in the path.
    schema = json.loads(api.get("/api/schema/?format=json").content)
    ids = {"agent_id": agent.pk, "id": None}
    for path in _get_paths(schema):
        concrete = path
        for name in PARAM.findall(path):
            key = name.strip("{}")
            value = {"agent_id": agent.pk, "execution_id": execution.pk}.get(key)
            if value is None and key in ("id", "pk"):
                value = {
                    "/agents/": agent.pk,
                    "/executions/": execution.pk,
                    "/provider-connections/": connection.pk,
                }.get(
                    next(
                        (
                            k
                            for k in ("/agents/", "/executions/", "/provider-connections/")
                            if path.startswith("/api/v1" + k)
                        ),
                        "",
                    ),
                )
            if value is None:
                concrete = None
                break
            concrete = concrete.replace(name, str(value))
        if concrete is None or path.endswith("/stream/"):
            continue
        response = api.get(concrete)
        seen.append((concrete, response.content.decode(errors="replace")))
    assert len(seen) > 15, [p for p, _ in seen]
    assert ids  # the ids above are the objects every detail page is fetched for
    # Every admin changelist and change page, as the platform superuser.
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    for model in admin.site._registry:
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        page = client.get(url)
        seen.append((url, page.content.decode(errors="replace")))
        first = model.objects.first()
        if first is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
            seen.append((change, client.get(change).content.decode(errors="replace")))
    # Every log line, and everything the SDK sent to the provider except the auth header.
    seen.append(("logs", "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)))
    for request in fake_llm.requests:
        seen.append((f"llm {request.path}", json.dumps(request.body) + json.dumps(request.headers)))
    assert fake_llm.requests and all(r.has_auth for r in fake_llm.chat_requests)
    leaks = [(where, canary[:12]) for where, body in seen for canary in canaries if canary and canary in body]
    assert leaks == []
