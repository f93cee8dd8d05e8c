"""Tool credentials a service echoes back (DESIGN.md §13 "secrets"), through the real runtime.

A canary service on 127.0.0.1 answers with the credentials it was sent, in every spelling a
careless or hostile service might use: the whole header, the token without its ``Bearer ``
prefix, URL-encoded, JSON-escaped inside a string, cut short, split across two JSON fields,
the decoded ``user:password`` of Basic auth and the password alone. None of it may reach
anything stored or sent on: steps, tool calls, events, logs, usage, admin pages, the API or
the model's next request.
"""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
from django.core import serializers
from django.urls import reverse

from bench.fakes.script import Reply, text, tool_call
from billing.models import UsageRecord
from executions.models import Execution, ExecutionEvent, ExecutionLog, ExecutionStep
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.fakes.http_fakes import Route
from tests.tools.fixtures import *  # noqa: F403 (synced_tools, http_fake)
from tools.models import AgentCapabilityGrant, ModuleEndpoint, Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok/8f+Q=z9Xa7Lm2Pq4Rw"  # characters that URL-encoding and JSON escaping change
API_KEY = 'k3y"Zr\\Wq5Ty8Ui0Op'
USER, PASSWORD = "svc-agentry", "pa55:w0rd-Hx7Kd"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _echo(request) -> Route:
    headers = request.headers
    auth = headers.get("authorization", "")
    token = auth.removeprefix("Bearer ")
    basic = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth.startswith("Basic ") else ""
    half = len(token) // 2
    return Route(
        json={
            "you_sent": auth,
            "token": token,
            "url_encoded": quote(token, safe=""),
            "form_encoded": quote_plus(token),
            "cut_short": token[:12],
            "split": {"first": token[:half], "second": token[half:]},
            "as_json_text": json.dumps({"api_key": headers.get("x-api-key", "")}),
            "api_key": headers.get("x-api-key", ""),
            "api_key_url": quote(headers.get("x-api-key", ""), safe=""),
            "basic_decoded": basic,
            "password": basic.partition(":")[2],
            "note": "ordinary text stays",
        }
    )


def _forms() -> dict[str, str]:
    """What must appear nowhere (each at least 8 characters)."""
    half = len(TOKEN) // 2
    return {
        "token": TOKEN,
        "token url-encoded": quote(TOKEN, safe=""),
        "token form-encoded": quote_plus(TOKEN),
        "token first half": TOKEN[:half],
        "token second half": TOKEN[half:],
        "token cut": TOKEN[:12],
        "api key": API_KEY,
        "api key JSON-escaped": json.dumps(API_KEY)[1:-1],
        "api key twice JSON-escaped": json.dumps(json.dumps(API_KEY))[1:-1],
        "api key url-encoded": quote(API_KEY, safe=""),
        "basic header": BASIC,
        "basic decoded": f"{USER}:{PASSWORD}",
        "password": PASSWORD,
    }


def test_echoed_credentials_are_redacted_in_every_form_everywhere(
    org, alice, make_agent, providers_at_fake, synced_tools, http_fake, client_for, client, caplog, django_user_model
):
    caplog.set_level(logging.DEBUG)
    http_fake.route("POST", "/orders", handler=_echo)
    http_fake.route("POST", "/crm/getContact", handler=_echo)
    http_fake.route("POST", "/orders-broken", status=401, text=f"bad credentials: {TOKEN[3:]} / {API_KEY}")
    for name, path in (("lookup_order", "/orders"), ("broken_lookup", "/orders-broken")):
        Tool.objects.create(
            organization=org,
            name=name,
            display_name=name,
            description="Look an order up.",
            category="custom",
            parameters_schema={"type": "object", "properties": {"order": {"type": "string"}}},
            handler_type="http",
            handler_config={"url": http_fake.url(path), "method": "POST"},
            secret_headers=json.dumps({"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY}),
        )
    ModuleEndpoint.objects.create(organization=org, module="crm", base_url=http_fake.url("/crm"), secret=BASIC)
    agent = make_agent(allowed_tools=["lookup_order", "broken_lookup", "crm_get_contact"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["read_contacts"])
    providers_at_fake.script(
        Reply(
            tool_calls=[
                tool_call("lookup_order", {"order": "A-1"}).tool_calls[0],
                tool_call("crm_get_contact", {"contact_id": "c-1"}).tool_calls[0],
                tool_call("broken_lookup", {"order": "A-2"}).tool_calls[0],
            ]
        ),
        text("Looked them up."),
    )
    execution, _ = execution_start(agent=agent, organization=org, task="Look up order A-1")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    # The services really were sent the credentials, and really echoed them.
    sent = http_fake.requests_to("/orders")[0].headers
    assert sent["authorization"] == f"Bearer {TOKEN}" and sent["x-api-key"] == API_KEY
    assert http_fake.requests_to("/crm/getContact")[0].headers["authorization"] == BASIC

    seen: list[tuple[str, str]] = []
    for model in (Execution, ExecutionStep, ExecutionLog, ExecutionEvent, ToolCall, UsageRecord):
        seen.append((model.__name__, serializers.serialize("json", model.objects.all())))
    for request in providers_at_fake.chat_requests:
        seen.append(("model request", json.dumps(request.body)))
    api = client_for(alice)
    for path in (
        f"/api/v1/executions/{execution.pk}/steps/",
        "/api/v1/tool-calls/",
        f"/api/v1/executions/{execution.pk}/",
    ):
        response = api.get(path)
        assert response.status_code == 200, path
        seen.append((path, response.content.decode()))
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    for model, obj in ((Execution, execution), (ToolCall, ToolCall.objects.filter(execution=execution).first())):
        meta = model._meta
        for url in (
            reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]),
        ):
            page = client.get(url)
            assert page.status_code == 200, url
            seen.append((url, page.content.decode()))
    seen.append(("logs", "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)))

    # The run went on with the answers, minus the credentials.
    outputs = {s.tool_name: s.tool_output for s in execution.steps.filter(step_type="act")}
    assert outputs["lookup_order"]["note"] == "ordinary text stays"
    assert outputs["lookup_order"]["token"] == "[redacted]"
    assert outputs["crm_get_contact"]["password"] == "[redacted]"
    assert "401" in outputs["broken_lookup"]["error"]
    leaks = [(where, what) for where, body in seen for what, form in _forms().items() if form in body]
    assert leaks == [], leaks
