"""Test connection on provider connections and MCP servers: one real request through the SSRF
guard (the fake LLM server speaking OpenAI's protocol, the SDK-built MCP server), the outcome
in a message, nothing saved; a private address is refused before anything is sent."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from agents.models import ProviderConnection
from bench.fakes.script import text
from tests.tools.fixtures import *  # noqa: F403
from tools.models import McpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_admin(adam) -> Client:
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(adam)
    return client


def _said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _connection(org, base_url: str) -> ProviderConnection:
    connection = ProviderConnection(
        organization=org, provider="openai_compatible", name="mine", base_url=base_url, default_model="tiny-1"
    )
    connection.set_api_key("sk-test-connection-key-123456")
    connection.save()
    return connection


def test_a_provider_connection_answers_through_the_guard(org, org_admin, fake_llm, settings):
    settings.AGENTRY_SSRF_ALLOW = [fake_llm.allow_entry]
    fake_llm.script(text("ok"))
    connection = _connection(org, fake_llm.openai_base_url)
    url = f"/admin/console/provider-connections/{connection.pk}/test/"
    page = org_admin.get(f"/admin/agents/providerconnection/{connection.pk}/change/").content.decode()
    assert f'action="{url}"' in page and 'id="test-connection"' in page
    response = org_admin.post(url)
    assert response.status_code == 302 and response["Location"].endswith(f"/{connection.pk}/change/")
    (message,) = _said(response)
    assert message.startswith("Test connection: openai_compatible / tiny-1 answered in "), message
    (request,) = fake_llm.chat_requests
    assert request.body["max_tokens"] == 1 and request.body["model"] == "tiny-1"
    assert org_admin.get(url).status_code == 405  # a POST only


def test_a_private_address_is_refused_before_anything_is_sent(org, org_admin, fake_llm, settings):
    settings.AGENTRY_SSRF_ALLOW = []
    connection = _connection(org, fake_llm.openai_base_url)  # loopback, not allow-listed
    (message,) = _said(org_admin.post(f"/admin/console/provider-connections/{connection.pk}/test/"))
    assert "did not answer" in message and "sk-test-connection-key" not in message, message
    assert fake_llm.chat_requests == []


def test_an_mcp_server_lists_its_tools_and_nothing_is_saved(org, org_admin, mcp_fake):
    server = McpServer.objects.create(organization=org, name="notes", url=mcp_fake.url)
    before = McpServer.objects.filter(pk=server.pk).values().get()
    response = org_admin.post(f"/admin/console/mcp-servers/{server.pk}/test/")
    (message,) = _said(response)
    assert "notes answered in" in message and "tool(s)" in message, message
    assert McpServer.objects.filter(pk=server.pk).values().get() == before

    blocked = McpServer.objects.create(organization=org, name="meta", url="http://169.254.169.254/mcp")
    message = _said(org_admin.post(f"/admin/console/mcp-servers/{blocked.pk}/test/"))[-1]  # after the first
    assert message.startswith("Test connection: meta did not answer"), message


def test_another_organizations_connections_are_not_found(other_org, org_admin):
    theirs = _connection(other_org, "https://llm.example.com/v1")
    server = McpServer.objects.create(organization=other_org, name="theirs", url="https://mcp.example.com/mcp")
    assert org_admin.post(f"/admin/console/provider-connections/{theirs.pk}/test/").status_code == 404
    assert org_admin.post(f"/admin/console/mcp-servers/{server.pk}/test/").status_code == 404
    platform = ProviderConnection.objects.create(provider="openai", name="platform", default_model="gpt-4o")
    assert org_admin.post(f"/admin/console/provider-connections/{platform.pk}/test/").status_code == 404
