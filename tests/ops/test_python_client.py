"""The hand-kept Python client against the real API (in-process through WSGI)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from django.test import Client

from executions.runtime.loop import run_execution

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
from agentry_client import AgentryClient, AgentryError

pytestmark = pytest.mark.django_db


def _through_django_test_client(request: httpx.Request) -> httpx.Response:
    # Not httpx.WSGITransport: Django's request_finished signal would close the test's
    # database connection (the test client disconnects it); same app, same middleware.
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in request.headers.items() if k.lower() != "content-type"
    }
    response = Client().generic(
        request.method,
        request.url.raw_path.decode(),
        data=request.content,
        content_type=request.headers.get("content-type", "application/octet-stream"),
        **extra,
    )
    return httpx.Response(response.status_code, headers=dict(response.items()), content=response.content)


@pytest.fixture
def api(alice, client_for):
    raw = client_for(alice).raw_token
    transport = httpx.MockTransport(_through_django_test_client)
    client = AgentryClient("http://testserver", token=raw, transport=transport)
    yield client
    client.close()


def test_create_publish_execute_and_read_back(api, org):
    agent = api.create_agent(
        {
            "name": "Client-made",
            "system_prompt": "Be brief.",
            "model_config": {"provider": "sandbox", "model": "sandbox-echo"},
        }
    )
    api.publish_agent(agent["id"], changelog="first")
    assert agent["id"] in [a["id"] for a in api.list_agents()["results"]]

    run = api.execute_agent(agent["id"], "Say hello")
    assert run["status"] == "pending"
    run_execution(run["id"])  # the worker's part, in this process
    done = api.wait_for_execution(run["id"], timeout=5, interval=0.1)
    assert done["status"] == "completed"
    assert api.list_steps(run["id"])["total"] >= 2


def test_errors_carry_the_error_shape(api):
    with pytest.raises(AgentryError) as caught:
        api.get_agent("00000000-0000-0000-0000-000000000000")
    error = caught.value
    assert error.status == 404 and error.code in ("NotFound", "AgentNotFound")
    assert error.request_id
    with pytest.raises(AgentryError) as caught:
        api.create_agent({"name": ""})
    assert caught.value.status == 400 and caught.value.code in ("InvalidAgentConfig", "InvalidInput")
