"""Authorization matrix generated from the OpenAPI schema (DESIGN.md §3, §13).

Every operation under /api/v1/ has an entry in MATRIX: the least role of an organization
that may use it on that organization's objects. Each operation is then called as an
anonymous client, as another organization's admin with this organization's ids, and as each
role of the organization. A new operation without an entry, or a stale entry, fails
``test_matrix_covers_every_operation``.

Entries are "role" or "role:marker":
- public: no bearer token (health; inbound hooks sign their own requests).
- global: the object is the platform's, the same for every organization (templates,
  platform agents, the marketplace), so another organization may see it too.
- self: the object belongs to the calling person (their tokens, their notifications); the
  path carries the caller's own id, and another person's id answers 404.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import ActivityLog, ApiToken
from accounts.services import api_token_create
from agents.models import AgentChain, AgentConfiguration, AgentGoal, AgentTemplate, ChainExecution, Visibility
from agents.services.agents import agent_create
from agents.services.connections import provider_connection_create
from agents.services.grants import agent_grant
from agents.services.versions import agent_publish
from approvals.models import RiskRule
from billing.models import Alert
from executions.models import ExecutionLog, PlatformEvent, ScheduledExecution, TriggerAttempt, WebhookEndpoint
from executions.triggers.hooks_in import hook_secret_rotate
from memory.models import Conversation, Document, Episode, KnowledgeBase, Memory
from tests.approvals.helpers import pending_approvals
from tests.conftest import assert_error
from tools.models import EmailTemplate, McpServer, ModuleEndpoint, Notification, Tool, ToolCall

ROLES = ("viewer", "member", "admin", "owner")
METHODS = ("get", "post", "put", "patch", "delete")
DENIED = {"InsufficientPermissions", "AgentAccessDenied"}

MATRIX: dict[str, str] = {
    "GET /api/v1/activity/": "viewer",
    "POST /api/v1/activity/": "member",
    "GET /api/v1/activity/{id}/": "viewer:self",
    "GET /api/v1/agent-templates/": "viewer:global",
    "GET /api/v1/agent-templates/{key}/": "viewer:global",
    "GET /api/v1/agents/": "viewer",
    "POST /api/v1/agents/": "member",
    "GET /api/v1/agents/stats/": "viewer",
    "GET /api/v1/agents/goal-metrics/": "viewer",
    "GET /api/v1/agents/vocabulary/": "viewer",
    "GET /api/v1/agents/{id}/goals/{goal_id}/progress/": "viewer",
    # Reporting a goal's value edits the (owner's) agent: agents.manage_all_agents.
    "POST /api/v1/agents/{id}/goals/{goal_id}/progress/": "admin",
    "POST /api/v1/agents/validate/": "member",
    "GET /api/v1/agents/{agent_id}/capabilities/": "viewer",
    "PUT /api/v1/agents/{agent_id}/capabilities/": "admin",
    "GET /api/v1/agents/{agent_id}/conversations/": "viewer",
    "GET /api/v1/agents/{agent_id}/conversations/{conversation_id}/": "viewer",
    "DELETE /api/v1/agents/{agent_id}/conversations/{conversation_id}/": "member",
    "GET /api/v1/agents/{agent_id}/episodes/": "viewer",
    "POST /api/v1/agents/{agent_id}/execute/": "member",
    "GET /api/v1/agents/{agent_id}/executions/": "viewer",
    "GET /api/v1/agents/{agent_id}/hook-secret/": "viewer",  # the URL and last 4 characters only
    "POST /api/v1/agents/{agent_id}/hook-secret/": "admin",
    "GET /api/v1/agents/{agent_id}/memories/": "viewer",
    "POST /api/v1/agents/{agent_id}/memories/": "member",
    "GET /api/v1/agents/{agent_id}/memories/{memory_id}/": "viewer",
    "PATCH /api/v1/agents/{agent_id}/memories/{memory_id}/": "member",
    "DELETE /api/v1/agents/{agent_id}/memories/{memory_id}/": "member",
    "GET /api/v1/agents/{agent_id}/memories/search/": "viewer",
    "GET /api/v1/agents/{id}/": "viewer",
    # The agent was made by the owner: changing another person's agent takes
    # agents.manage_all_agents (admin); a member may change only their own.
    "PATCH /api/v1/agents/{id}/": "admin",
    "DELETE /api/v1/agents/{id}/": "admin",
    "POST /api/v1/agents/{id}/activate/": "admin",
    "POST /api/v1/agents/{id}/archive/": "admin",
    "POST /api/v1/agents/{id}/deactivate/": "admin",
    "POST /api/v1/agents/{id}/deprecate/": "admin",
    "GET /api/v1/agents/{id}/metrics/": "viewer",
    "GET /api/v1/agents/{id}/permissions/": "admin",  # who may use an agent: its managers
    "POST /api/v1/agents/{id}/permissions/": "admin",
    "DELETE /api/v1/agents/{id}/permissions/": "admin",
    "POST /api/v1/agents/{id}/publish/": "admin",
    "POST /api/v1/agents/{id}/rollback/": "admin",
    "GET /api/v1/agents/{id}/versions/": "viewer",
    "GET /api/v1/agents/{id}/versions/{version}/": "viewer",
    "PUT /api/v1/agents/{id}/versions/{version}/": "admin",
    "PATCH /api/v1/agents/{id}/versions/{version}/": "admin",
    "DELETE /api/v1/agents/{id}/versions/{version}/": "admin",
    "GET /api/v1/agents/{id}/versions/compare/": "viewer",
    "POST /api/v1/agents/from-template/": "member",
    "GET /api/v1/alerts/": "viewer",
    "GET /api/v1/alerts/{id}/": "viewer",
    "POST /api/v1/alerts/{id}/read/": "viewer",
    "GET /api/v1/approval-rules/": "viewer",
    "POST /api/v1/approval-rules/": "admin",
    "GET /api/v1/approval-rules/{id}/": "viewer",
    "PATCH /api/v1/approval-rules/{id}/": "admin",
    "DELETE /api/v1/approval-rules/{id}/": "admin",
    "GET /api/v1/approvals/": "viewer",
    "GET /api/v1/approvals/{id}/": "viewer",
    "POST /api/v1/approvals/{id}/approve/": "admin",
    "POST /api/v1/approvals/{id}/deny/": "admin",
    "GET /api/v1/chain-executions/": "viewer",
    "GET /api/v1/chain-executions/{id}/": "viewer",
    "POST /api/v1/chain-executions/{id}/cancel/": "member",
    "GET /api/v1/chains/": "viewer",
    "POST /api/v1/chains/": "member",
    "POST /api/v1/chains/validate/": "member",
    "GET /api/v1/chains/{id}/": "viewer",
    "PATCH /api/v1/chains/{id}/": "member",
    "DELETE /api/v1/chains/{id}/": "member",
    "POST /api/v1/chains/{id}/execute/": "member",
    "GET /api/v1/chains/{id}/suggestions/": "viewer",
    "GET /api/v1/event-log/": "viewer",
    "GET /api/v1/event-log/{id}/": "viewer",
    "POST /api/v1/events/": "member",
    "GET /api/v1/executions/": "viewer",
    "GET /api/v1/executions/{id}/": "viewer",
    "POST /api/v1/executions/{id}/cancel/": "member",
    "GET /api/v1/executions/{id}/logs/": "viewer",
    "GET /api/v1/executions/{id}/steps/": "viewer",
    "GET /api/v1/executions/{id}/stream/": "viewer",
    "GET /api/v1/health/": "public",
    "POST /api/v1/hooks/{agent_id}/": "public",
    "GET /api/v1/knowledge-bases/": "viewer",
    "POST /api/v1/knowledge-bases/": "member",
    "GET /api/v1/knowledge-bases/{id}/": "viewer",
    "PATCH /api/v1/knowledge-bases/{id}/": "member",
    "DELETE /api/v1/knowledge-bases/{id}/": "member",
    "GET /api/v1/knowledge-bases/{id}/documents/": "viewer",
    "POST /api/v1/knowledge-bases/{id}/documents/": "member",
    "GET /api/v1/knowledge-bases/{id}/documents/{document_id}/": "viewer",
    "DELETE /api/v1/knowledge-bases/{id}/documents/{document_id}/": "member",
    "POST /api/v1/knowledge-bases/{id}/reindex/": "member",
    "GET /api/v1/knowledge-bases/{id}/search/": "viewer",
    "GET /api/v1/marketplace/": "viewer:global",
    "GET /api/v1/marketplace/{id}/": "viewer:global",
    "POST /api/v1/marketplace/{id}/copy/": "member:global",
    "GET /api/v1/mcp-servers/": "viewer",
    "POST /api/v1/mcp-servers/": "admin",
    "GET /api/v1/mcp-servers/{id}/": "viewer",
    "PATCH /api/v1/mcp-servers/{id}/": "admin",
    "DELETE /api/v1/mcp-servers/{id}/": "admin",
    "POST /api/v1/mcp-servers/{id}/sync/": "admin",
    "GET /api/v1/module-endpoints/": "admin",
    "POST /api/v1/module-endpoints/": "admin",
    "GET /api/v1/module-endpoints/{id}/": "admin",
    "PATCH /api/v1/module-endpoints/{id}/": "admin",
    "DELETE /api/v1/module-endpoints/{id}/": "admin",
    "GET /api/v1/notifications/": "viewer:self",
    "GET /api/v1/notifications/{id}/": "viewer:self",
    "POST /api/v1/notifications/{id}/read/": "viewer:self",
    "GET /api/v1/organization/roles/": "viewer",
    "PUT /api/v1/organization/roles/": "owner",
    "GET /api/v1/platform-agents/": "viewer:global",
    "GET /api/v1/platform-agents/{id}/": "viewer:global",
    "GET /api/v1/platform-agents/{id}/configuration/": "viewer:global",
    "PUT /api/v1/platform-agents/{id}/configuration/": "admin:global",
    "DELETE /api/v1/platform-agents/{id}/configuration/": "admin:global",
    "GET /api/v1/provider-connections/": "admin",
    "POST /api/v1/provider-connections/": "admin",
    "GET /api/v1/provider-connections/{id}/": "admin",
    "PATCH /api/v1/provider-connections/{id}/": "admin",
    "DELETE /api/v1/provider-connections/{id}/": "admin",
    "GET /api/v1/schedules/": "viewer",
    "POST /api/v1/schedules/": "member",
    "GET /api/v1/schedules/{id}/": "viewer",
    "PATCH /api/v1/schedules/{id}/": "member",
    "DELETE /api/v1/schedules/{id}/": "member",
    "GET /api/v1/tokens/": "viewer:self",
    "POST /api/v1/tokens/": "viewer:self",
    "GET /api/v1/tokens/{id}/": "viewer:self",
    "DELETE /api/v1/tokens/{id}/": "viewer:self",
    "GET /api/v1/tool-calls/": "viewer",
    "GET /api/v1/tool-calls/{id}/": "viewer",
    "GET /api/v1/tools/": "viewer",
    "POST /api/v1/tools/": "admin",
    "GET /api/v1/tools/{name}/": "viewer",
    "PATCH /api/v1/tools/{name}/": "admin",
    "DELETE /api/v1/tools/{name}/": "admin",
    "GET /api/v1/trigger-attempts/": "viewer",
    "GET /api/v1/trigger-attempts/{id}/": "viewer",
    "GET /api/v1/event-types/": "viewer",
    "GET /api/v1/email-templates/": "viewer",
    "POST /api/v1/email-templates/": "admin",
    "GET /api/v1/email-templates/{id}/": "viewer",
    "PATCH /api/v1/email-templates/{id}/": "admin",
    "DELETE /api/v1/email-templates/{id}/": "admin",
    "GET /api/v1/usage/": "viewer",
    "GET /api/v1/usage/quota/": "viewer",
    "GET /api/v1/webhooks/": "admin",
    "POST /api/v1/webhooks/": "admin",
    "GET /api/v1/webhooks/{id}/": "admin",
    "PATCH /api/v1/webhooks/{id}/": "admin",
    "DELETE /api/v1/webhooks/{id}/": "admin",
    "GET /api/v1/webhooks/{id}/deliveries/": "admin",
    "POST /api/v1/webhooks/{id}/rotate-secret/": "admin",
}

PARAM = re.compile(r"\{([^}]+)\}")


def schema_operations() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method in METHODS
    )


def test_matrix_covers_every_operation():
    operations = set(schema_operations())
    assert len(operations) > 100
    assert {"missing": sorted(operations - set(MATRIX)), "stale": sorted(set(MATRIX) - operations)} == {
        "missing": [],
        "stale": [],
    }


@dataclass
class World:
    """Everything the paths of the schema need, in ``org``, made once per test."""

    ids: dict[str, str] = field(default_factory=dict)  # "/api/v1/<prefix>/" or param name -> id
    own: set[str] = field(default_factory=set)  # ids of org's rows that must never leak
    tokens: dict[str, str] = field(default_factory=dict)  # username -> own token id
    notifications: dict[str, str] = field(default_factory=dict)  # username -> own notification id
    activity: dict[str, str] = field(default_factory=dict)  # username -> own activity row id
    clients: dict[str, APIClient] = field(default_factory=dict)
    # The few operations whose input is read before the object is looked up get a valid body,
    # so that another organization's 404 is what is checked (see the report on the order).
    bodies: dict[str, dict] = field(default_factory=dict)


_HANDLER: list = []


def shared_handler(client: APIClient) -> APIClient:
    """One request handler for every client: loading the middleware (whitenoise scans the
    static files) costs more than the request itself."""
    if not _HANDLER:
        _HANDLER.append(client.handler)
    client.handler = _HANDLER[0]
    return client


def _add(world: World, key: str, value: Any) -> None:
    world.ids[key] = str(value)
    world.own.add(str(value))


@pytest.fixture
def world(org, other_org, alice, adam, mia, vic, oscar, owner_actor, client_for) -> World:
    world = World()
    agent = agent_create(actor=owner_actor, data={"name": "Matrix", "system_prompt": "You are a test agent."})
    version = agent_publish(actor=owner_actor, agent=agent)
    agent.refresh_from_db()
    _add(world, "agent", agent.pk)
    goal = AgentGoal.objects.create(agent=agent, name="Matrix goal", success_metric="leads_qualified")
    _add(world, "goal_id", goal.pk)
    world.ids["version"] = version.version
    public = agent_create(
        actor=owner_actor,
        data={"name": "Shared", "system_prompt": "You are a shared agent.", "visibility": Visibility.PUBLIC},
    )
    agent_publish(actor=owner_actor, agent=public)
    _add(world, "/api/v1/marketplace/", public.pk)
    platform = agent_create(
        actor=None, organization=None, data={"name": "Platform helper", "system_prompt": "You help everyone."}
    )
    agent_publish(actor=None, agent=platform)
    platform.visibility = Visibility.ORGANIZATION
    platform.save(update_fields=["visibility"])
    world.ids["/api/v1/platform-agents/"] = str(platform.pk)
    for organization in (org, other_org):
        AgentConfiguration.objects.create(organization=organization, agent=platform, overrides={})
    hook_secret_rotate(actor=owner_actor, agent=agent)
    template = AgentTemplate.objects.filter(is_active=True).order_by("key").first()
    assert template is not None, "the templates migration seeds at least one"
    world.ids["key"] = template.key

    approval = pending_approvals(agent, org)[0]
    execution = approval.execution
    _add(world, "/api/v1/approvals/", approval.pk)
    _add(world, "/api/v1/executions/", execution.pk)
    ExecutionLog.objects.create(execution=execution, message="matrix log line")

    tool = Tool.objects.create(
        organization=org,
        name="acme_lookup",
        display_name="Acme lookup",
        description="Looks things up at Acme.",
        category="http",
        handler_type="http",
        handler_config={"url": "https://acme.example.test/lookup", "method": "POST", "headers": {}},
        created_by=alice,
    )
    world.ids["name"] = tool.name
    world.own.add(str(tool.pk))
    call = ToolCall.objects.create(organization=org, agent=agent, execution=execution, tool_name=tool.name)
    _add(world, "/api/v1/tool-calls/", call.pk)
    memory = Memory.objects.create(organization=org, agent=agent, memory_type="fact", content="Acme ships on Fridays.")
    _add(world, "memory_id", memory.pk)
    conversation = Conversation.objects.create(organization=org, agent=agent)
    _add(world, "conversation_id", conversation.pk)
    episode = Episode.objects.create(organization=org, agent=agent, outcome="success")
    world.own.add(str(episode.pk))
    knowledge_base = KnowledgeBase.objects.create(organization=org, name="Acme handbook", created_by=alice)
    _add(world, "/api/v1/knowledge-bases/", knowledge_base.pk)
    raw = b"Acme returns policy: thirty days."
    document = Document.objects.create(
        organization=org,
        knowledge_base=knowledge_base,
        title="Returns",
        format="text",
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    _add(world, "document_id", document.pk)
    chain = AgentChain.objects.create(
        organization=org, name="Matrix chain", steps=[{"id": "first", "agent_id": str(agent.pk)}], created_by=alice
    )
    _add(world, "/api/v1/chains/", chain.pk)
    chain_run = ChainExecution.objects.create(organization=org, chain=chain, definition={"steps": chain.steps})
    _add(world, "/api/v1/chain-executions/", chain_run.pk)
    schedule = ScheduledExecution.objects.create(organization=org, agent=agent, cron_expression="0 9 * * *")
    _add(world, "/api/v1/schedules/", schedule.pk)
    endpoint = WebhookEndpoint.objects.create(
        organization=org, url="https://hooks.example.test/in", secret="whsec_matrix_secret", secret_last4="cret"
    )
    _add(world, "/api/v1/webhooks/", endpoint.pk)
    event = PlatformEvent.objects.create(organization=org, event_type="ai.execution.completed", payload={})
    _add(world, "/api/v1/event-log/", event.pk)
    attempt = TriggerAttempt.objects.create(
        organization=org, agent=agent, trigger_type="webhook", code="InvalidInput", message="Refused."
    )
    _add(world, "/api/v1/trigger-attempts/", attempt.pk)
    # Its address does not resolve: a sync fails at once (status "error"), reaching nothing.
    mcp_server = McpServer.objects.create(
        organization=org, name="matrix", url="https://mcp.example.test/mcp", headers='{"Authorization": "Bearer m"}'
    )
    _add(world, "/api/v1/mcp-servers/", mcp_server.pk)
    module = ModuleEndpoint.objects.create(organization=org, module="crm", base_url="https://crm.example.test/")
    _add(world, "/api/v1/module-endpoints/", module.pk)
    email_template = EmailTemplate.objects.create(organization=org, name="Welcome", subject="Hi", body="Hello")
    _add(world, "/api/v1/email-templates/", email_template.pk)
    connection = provider_connection_create(
        actor=owner_actor, data={"provider": "openai", "api_key": "sk-matrix-0000", "is_default": True}
    )
    _add(world, "/api/v1/provider-connections/", connection.pk)
    rule = RiskRule.objects.create(organization=org, pattern="email_*", risk_level="high")
    _add(world, "/api/v1/approval-rules/", rule.pk)
    alert = Alert.objects.create(organization=org, kind="quota_runs", key="matrix", message="Quota at 80 %.")
    _add(world, "/api/v1/alerts/", alert.pk)
    for user in (alice, adam, mia, vic):
        note = Notification.objects.create(organization=org, user=user, message=f"Hello {user.username}")
        world.notifications[user.username] = str(note.pk)
        world.own.add(str(note.pk))
        # Below admin one sees one's own activity only (billing.view_all_activity).
        activity = ActivityLog.objects.create(organization=org, user=user, action="agent.created")
        world.activity[user.username] = str(activity.pk)
        world.own.add(str(activity.pk))
        world.clients[user.username] = shared_handler(client_for(user))
        token = ApiToken.objects.filter(user=user, organization=org).order_by("-created_at").first()
        world.tokens[user.username] = str(token.pk)
        world.own.add(str(token.pk))
    world.clients[oscar.username] = shared_handler(client_for(oscar))
    agent_grant(actor=owner_actor, agent=agent, user=vic, permission="read")
    # A row in the other organization that org's people must not see either.
    other_agent = agent_create(actor=None, organization=other_org, data={"name": "Globex agent", "system_prompt": "x"})
    world.ids["foreign_agent"] = str(other_agent.pk)
    api_token_create(user=alice, organization=org, name="spare")
    world.bodies = {
        "POST /api/v1/agents/{id}/permissions/": {"user": vic.username, "permission": "read"},
        "DELETE /api/v1/agents/{id}/permissions/": {"user": vic.username},
        "POST /api/v1/agents/{id}/rollback/": {"version": version.version},
    }
    return world


def concrete(operation: str, world: World, username: str) -> str:
    """The operation's path with org's ids (or ``username``'s own ones for self rows)."""
    _, path = operation.split(" ", 1)
    prefix = "/".join(path.split("/")[:4]) + "/"

    def value(match: re.Match) -> str:
        name = match.group(1)
        if prefix == "/api/v1/tokens/":
            return world.tokens[username]
        if prefix == "/api/v1/notifications/":
            return world.notifications[username]
        if prefix == "/api/v1/activity/":
            return world.activity[username]
        if name in ("agent_id",) or (name == "id" and prefix == "/api/v1/agents/"):
            return world.ids["agent"]
        if name == "id":
            return world.ids[prefix]
        return world.ids[name]

    return PARAM.sub(value, path)


def call(client: APIClient, operation: str, path: str, world: World):
    """One request in a savepoint that is rolled back, so every caller meets the same world."""
    method = operation.split(" ", 1)[0].lower()
    with transaction.atomic():
        if method in ("post", "put", "patch") or operation in world.bodies:
            response = getattr(client, method)(path, data=world.bodies.get(operation, {}), format="json")
        else:
            response = getattr(client, method)(path)
        transaction.set_rollback(True)
    return response


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return ""
    return response.content.decode(errors="replace")


def assert_denied(response, who: str) -> None:
    assert response.status_code == 403, (who, response.status_code, body_of(response)[:300])
    error = assert_error(response, 403, response.json()["error"]["code"])
    assert error["code"] in DENIED, (who, error)


def assert_allowed(response, who: str) -> None:
    assert response.status_code not in (401, 403, 404, 405) and response.status_code < 500, (
        who,
        response.status_code,
        body_of(response)[:300],
    )
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["error"]["code"])


@pytest.mark.parametrize("operation", sorted(MATRIX))
def test_operation_authorization(operation, world, alice, adam, mia, vic, oscar):
    least, _, marker = MATRIX[operation].partition(":")
    path = operation.split(" ", 1)[1]
    has_params = bool(PARAM.search(path))
    people = {"viewer": vic, "member": mia, "admin": adam, "owner": alice}

    # Anonymous.
    anonymous = call(shared_handler(APIClient()), operation, concrete(operation, world, alice.username), world)
    if least == "public":
        if path == "/api/v1/health/":
            assert anonymous.status_code == 200, anonymous.content[:300]
        else:  # an inbound hook without a signature is refused by its own scheme, in the error shape
            assert 400 <= anonymous.status_code < 500 and anonymous.status_code != 404, anonymous.content[:300]
            assert_error(anonymous, anonymous.status_code, anonymous.json()["error"]["code"])
    else:
        assert_error(anonymous, 401, anonymous.json()["error"]["code"])

    # Another organization's admin with org's ids: 404, or a list without org's rows.
    foreign = call(world.clients[oscar.username], operation, concrete(operation, world, alice.username), world)
    text = body_of(foreign)
    leaked = sorted(i for i in world.own if i in text)
    if least == "public":
        assert foreign.status_code < 500 and not leaked, (foreign.status_code, leaked)
    elif marker == "global":
        assert_allowed(foreign, "oscar")
    elif has_params:
        assert_error(foreign, 404, foreign.json()["error"]["code"])
    else:
        assert foreign.status_code < 500 and foreign.status_code not in (401, 404), (
            foreign.status_code,
            text[:300],
        )
        assert not leaked, ("oscar sees org's ids", leaked, text[:300])

    if least == "public":
        # A bearer token does not open an inbound hook either.
        signed_in = call(world.clients[alice.username], operation, concrete(operation, world, alice.username), world)
        assert signed_in.status_code == anonymous.status_code, signed_in.content[:300]
        return

    # org's roles, weakest first: below the least role 403, from it on allowed.
    results = {}
    for role in ROLES:
        user = people[role]
        response = call(world.clients[user.username], operation, concrete(operation, world, user.username), world)
        results[role] = response
        if ROLES.index(role) < ROLES.index(least):
            assert_denied(response, role)
        else:
            assert_allowed(response, role)
    if marker == "self" and has_params:
        # Someone else's own row (the owner's token, notification, activity) is not found by a viewer.
        response = call(world.clients[vic.username], operation, concrete(operation, world, alice.username), world)
        assert_error(response, 404, response.json()["error"]["code"])
