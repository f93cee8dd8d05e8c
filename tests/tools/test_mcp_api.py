"""``mcp-servers/`` (issue #17): an organization's servers, write-only headers, no stdio from
tenants, the platform's servers only where shared, other organizations' ids 404."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_error
from tools.models import McpServer, McpServerStatus, McpTransport, Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "Bearer mcp-api-s3cret-9876"
URL = "/api/v1/mcp-servers/"


@pytest.fixture
def admin_client(adam, client_for):
    return client_for(adam)


def create(client, **body):
    return client.post(URL, body, format="json")


def test_an_admin_adds_a_server_syncs_it_and_sees_only_header_names(admin_client, mcp_fake):
    mcp_fake.required_headers = {"Authorization": SECRET}
    created = create(admin_client, name="notes", url=mcp_fake.url, headers={"Authorization": SECRET})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["header_names"] == ["Authorization"]
    assert body["transport"] == "streamable_http" and body["is_platform"] is False
    synced = admin_client.post(f"{URL}{body['id']}/sync/")
    assert synced.status_code == 200, synced.content
    server = synced.json()
    assert server["status"] == "ok", server["last_error"]
    offered = {t["tool_name"] for t in server["tools"] if t["offered"]}
    assert "mcp__notes__delete_note" in offered
    delete = next(t for t in server["tools"] if t["name"] == "delete_note")
    assert delete["is_dangerous"] is True and delete["annotations"]["destructiveHint"] is True
    listed = admin_client.get("/api/v1/tools/?handler_type=mcp").json()
    assert {t["name"] for t in listed["results"]} == offered
    for response in (created, synced, admin_client.get(URL), admin_client.get(f"{URL}{body['id']}/")):
        assert SECRET not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "local", "url": "http://x.test/mcp", "transport": "stdio"}, "transport"),
        ({"name": "local", "url": "http://x.test/mcp", "command": "rm"}, "command"),
        ({"name": "local", "url": "http://x.test/mcp", "args": ["-rf", "/"]}, "args"),
        ({"name": "local", "url": "http://x.test/mcp", "env": {"A": "b"}}, "env"),
        ({"name": "Bad Name", "url": "http://x.test/mcp"}, "name"),
        ({"name": "a__b", "url": "http://x.test/mcp"}, "name"),
        ({"name": "local", "url": "ftp://x.test/mcp"}, "url"),
        ({"name": "local", "url": "http://127.0.0.1:9/mcp"}, "url"),
        ({"name": "local", "url": "http://169.254.169.254/mcp"}, "url"),
        ({"name": "local", "url": "http://x.test/mcp", "headers": {"Host": "evil"}}, "headers"),
        ({"name": "local", "url": "http://x.test/mcp", "headers": {"X-A": "one\r\nX-B: two"}}, "headers"),
        ({"name": "local"}, "url"),
    ],
)
def test_bad_input_is_a_400_and_nothing_is_written(admin_client, body, field):
    response = create(admin_client, **body)
    error = assert_error(response, 400, "InvalidInput")
    assert field in json.dumps(error["details"]), error
    assert not McpServer.objects.exists()


def test_names_are_unique_and_not_a_platform_servers(admin_client, org):
    McpServer.objects.create(organization=None, name="time", transport=McpTransport.STDIO, command="mcp-server-time")
    assert_error(create(admin_client, name="time", url="http://x.test/mcp"), 409, "Conflict")
    assert create(admin_client, name="mine", url="http://x.test/mcp").status_code == 201
    assert_error(create(admin_client, name="mine", url="http://x.test/mcp"), 409, "Conflict")
    assert McpServer.objects.filter(organization=org).count() == 1


def test_members_read_admins_write(mia, vic, client_for, admin_client):
    assert create(client_for(mia), name="notes", url="http://x.test/mcp").status_code == 403
    created = create(admin_client, name="notes", url="http://x.test/mcp").json()
    assert client_for(vic).get(f"{URL}{created['id']}/").status_code == 200
    assert client_for(mia).post(f"{URL}{created['id']}/sync/").status_code == 403


def test_another_organizations_server_is_404(admin_client, oscar, client_for):
    created = create(admin_client, name="notes", url="http://x.test/mcp").json()
    foreign = client_for(oscar)
    path = f"{URL}{created['id']}/"
    assert_error(foreign.get(path), 404, "NotFound")
    assert_error(foreign.patch(path, {"is_active": False}, format="json"), 404, "NotFound")
    assert_error(foreign.delete(path), 404, "NotFound")
    assert_error(foreign.post(f"{path}sync/"), 404, "NotFound")
    assert foreign.get(URL).json()["total"] == 0
    assert_error(foreign.get(f"{URL}not-a-uuid/"), 404, "NotFound")


def test_a_platform_server_is_seen_only_where_shared_and_changed_by_nobody_there(
    org, other_org, admin_client, oscar, client_for, mcp_fake
):
    from tools.mcp.services import mcp_server_sync

    platform = McpServer.objects.create(
        organization=None, name="shared", url=mcp_fake.url, description="The platform's notes."
    )
    platform.shared_with.add(org)
    mcp_server_sync(server=platform)
    mine = admin_client.get(URL).json()["results"]
    assert [(s["name"], s["is_platform"], s["url"]) for s in mine] == [("shared", True, "")]
    path = f"{URL}{platform.pk}/"
    assert_error(admin_client.patch(path, {"is_active": False}, format="json"), 403, "InsufficientPermissions")
    assert_error(admin_client.delete(path), 403, "InsufficientPermissions")
    tools_here = {t["name"] for t in admin_client.get("/api/v1/tools/?handler_type=mcp").json()["results"]}
    assert "mcp__shared__read_note" in tools_here
    foreign = client_for(oscar)
    assert foreign.get(URL).json()["total"] == 0
    assert_error(foreign.get(path), 404, "NotFound")
    assert foreign.get("/api/v1/tools/?handler_type=mcp").json()["total"] == 0
    assert_error(foreign.get("/api/v1/tools/mcp__shared__read_note/"), 404, "NotFound")


def test_a_platform_servers_tools_are_not_callable_where_not_shared(other_org, mcp_fake, make_agent, settings):
    from executions.services import execution_start
    from tests.tools.fixtures import ToolEnv
    from tools.gateway import DatabaseToolPort
    from tools.mcp.services import mcp_server_sync

    platform = McpServer.objects.create(organization=None, name="shared", url=mcp_fake.url)
    mcp_server_sync(server=platform)  # shared with nobody yet
    from agents.services.agents import agent_create
    from agents.services.versions import agent_publish

    agent = agent_create(
        actor=None, organization=other_org, data={"name": "Globex", "system_prompt": "x", "allowed_tools": ["*"]}
    )
    agent_publish(actor=None, agent=agent)
    agent.refresh_from_db()
    execution, _ = execution_start(agent=agent, organization=other_org, task="t")
    env = ToolEnv(
        org=other_org, agent=agent, execution=execution, port=DatabaseToolPort(), config=dict(execution.config)
    )
    assert all(not spec.name.startswith("mcp__") for spec in env.port.specs(context=env.context()))
    outcome = env.call("mcp__shared__read_note", {"key": "x"})
    assert outcome.status == "denied"
    assert mcp_fake.calls_of("read_note") == []


def test_tools_of_a_server_are_not_edited_as_http_tools(admin_client, mcp_fake):
    created = create(admin_client, name="notes", url=mcp_fake.url).json()
    admin_client.post(f"{URL}{created['id']}/sync/")
    path = "/api/v1/tools/mcp__notes__read_note/"
    assert_error(admin_client.patch(path, {"description": "mine"}, format="json"), 409, "Conflict")
    assert_error(admin_client.delete(path), 409, "Conflict")
    assert_error(
        admin_client.post(
            "/api/v1/tools/",
            {
                "name": "mcp__x__y",
                "description": "d",
                "parameters_schema": {"type": "object"},
                "url": "https://x.test/",
            },
            format="json",
        ),
        400,
        "InvalidInput",
    )


def test_switching_a_server_off_takes_its_tools_away_and_delete_removes_them(admin_client, mcp_fake, org):
    created = create(admin_client, name="notes", url=mcp_fake.url).json()
    admin_client.post(f"{URL}{created['id']}/sync/")
    path = f"{URL}{created['id']}/"
    assert admin_client.patch(path, {"is_active": False}, format="json").json()["is_active"] is False
    assert not Tool.objects.filter(mcp_server_id=created["id"], is_active=True).exists()
    assert admin_client.delete(path).status_code == 204
    assert not Tool.objects.filter(name__startswith="mcp__notes__").exists()
    assert McpServer.objects.filter(organization=org).count() == 0
    assert ToolCall.objects.count() == 0


def test_a_failed_sync_answers_200_with_the_status_and_reason(admin_client, mcp_fake):
    created = create(admin_client, name="notes", url=mcp_fake.url).json()
    mcp_fake.required_headers = {"Authorization": SECRET}
    body = admin_client.post(f"{URL}{created['id']}/sync/").json()
    assert body["status"] == McpServerStatus.ERROR
    assert "HTTP 401" in body["last_error"]
