"""Admin pages for MCP servers (issue #17): organization admins add network servers as the API
lets them; only platform superusers define stdio servers; header values are never shown."""

from __future__ import annotations

import json

import pytest

from tests.factories import UserFactory
from tools.models import McpServer, McpTransport

pytestmark = pytest.mark.django_db

SECRET = "Bearer admin-mcp-s3cret-5555"
ADD = "/admin/tools/mcpserver/add/"


@pytest.fixture
def staff_adam(adam):
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    return adam


def form(org, **changes):
    data = {
        "organization": str(org.pk), "name": "notes", "description": "", "transport": "streamable_http",
        "url": "https://mcp.example.com/mcp", "is_active": "on", "timeout_seconds": "30", "untrusted_output": "on",
        "new_headers": json.dumps({"Authorization": SECRET}),
    }  # fmt: skip
    data.update(changes)
    return data


def test_an_organization_admin_adds_a_server_and_never_sees_the_header_again(client, org, staff_adam):
    client.force_login(staff_adam)
    page = client.get(ADD).content.decode()
    assert 'name="command"' not in page and 'name="new_env"' not in page and 'name="shared_with"' not in page
    assert "stdio" not in page
    response = client.post(ADD, form(org))
    assert response.status_code == 302, response.content.decode()[:3000]
    server = McpServer.objects.get(organization=org, name="notes")
    assert json.loads(server.headers) == {"Authorization": SECRET}
    change = client.get(f"/admin/tools/mcpserver/{server.pk}/change/").content.decode()
    assert SECRET not in change and "admin-mcp-s3cret" not in change
    assert "Authorization" in change  # the name, as "headers set"
    assert SECRET not in client.get("/admin/tools/mcpserver/").content.decode()


def test_an_organization_admin_cannot_make_a_stdio_server(client, org, staff_adam):
    client.force_login(staff_adam)
    response = client.post(ADD, form(org, transport="stdio", command="/bin/sh", args='["-c", "id"]'))
    assert response.status_code == 200  # the form again, with its error
    assert not McpServer.objects.exists()


def test_the_admin_refuses_what_the_api_refuses(client, org, staff_adam):
    client.force_login(staff_adam)
    response = client.post(ADD, form(org, url="http://169.254.169.254/latest/"))
    assert response.status_code == 200
    assert "link-local" in response.content.decode()
    assert not McpServer.objects.exists()


def test_a_superuser_defines_a_platform_stdio_server_and_shares_it(client, org):
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client.force_login(root)
    data = {
        "organization": "", "name": "time", "description": "", "transport": "stdio", "url": "",
        "command": "mcp-server-time", "args": '["--local-timezone", "UTC"]', "is_active": "on",
        "timeout_seconds": "30", "shared_with": [str(org.pk)], "new_headers": "", "new_env": '{"TZ_TOKEN": "env-secret-1"}',
    }  # fmt: skip
    response = client.post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    server = McpServer.objects.get(name="time", organization__isnull=True)
    assert server.transport == McpTransport.STDIO and list(server.shared_with.all()) == [org]
    page = client.get(f"/admin/tools/mcpserver/{server.pk}/change/").content.decode()
    assert "env-secret-1" not in page and "TZ_TOKEN" in page
    # An organization's server may not run a command, even for a superuser.
    refused = client.post(ADD, {**data, "organization": str(org.pk), "name": "local", "shared_with": []})
    assert refused.status_code == 200 and not McpServer.objects.filter(name="local").exists()
