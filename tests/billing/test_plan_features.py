"""A plan's features are enforced (403 ``PlanFeatureUnavailable``, nothing written), superusers
are never refused, and the plan's ``max_agents`` limits creation."""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentChain
from agents.services import agent_create
from agents.services.chains import chain_create
from billing.models import Plan
from billing.quotas import plan_feature_require
from billing.seeding import sync_plans
from config.api.errors import ApiError
from executions.models import WebhookEndpoint
from memory.models import KnowledgeBase
from tests.chains.conftest import step
from tests.conftest import assert_error
from tools.models import McpServer

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = {"name": "Planned", "system_prompt": "You are a test agent."}


@pytest.fixture
def free(org) -> Plan:
    sync_plans()
    plan = Plan.objects.get(slug="free")
    org.plan = plan
    org.save(update_fields=["plan"])
    return plan


def test_the_free_plan_lacks_the_paid_features(free, org, alice, adam, client_for):
    api = client_for(adam)
    refused = {
        "/api/v1/knowledge-bases/": {"name": "Docs"},
        "/api/v1/webhooks/": {"url": "https://hooks.example.com/in", "events": ["ai.execution.*"]},
        "/api/v1/mcp-servers/": {"name": "notes", "url": "https://mcp.example.com/mcp"},
        "/api/v1/chains/": {"name": "Pipeline", "steps": []},
        "/api/v1/chains/validate/": {"name": "Pipeline", "steps": []},
    }
    for path, body in refused.items():
        error = assert_error(api.post(path, body, format="json"), 403, "PlanFeatureUnavailable")
        assert error["details"]["plan"] == "free" and error["message"].startswith("The Free plan does not include")
    assert not KnowledgeBase.objects.exists() and not WebhookEndpoint.objects.exists()
    assert not McpServer.objects.exists() and not AgentChain.objects.exists()


def test_a_plan_that_names_a_feature_or_not_has_it(org, alice):
    org.plan = Plan.objects.create(
        slug="custom", name="Custom", included_runs=1, included_tokens=1, features={"chains": True}
    )
    org.save(update_fields=["plan"])
    for feature in ("chains", "webhooks", "knowledge_bases", "mcp"):
        plan_feature_require(organization=org, feature=feature, user=alice)
    with pytest.raises(ValueError):
        plan_feature_require(organization=org, feature="teleportation")


def test_superusers_are_never_refused(free, org, alice, django_user_model, make_agent):
    steps = [step("one", make_agent(name="Step"))]
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    plan_feature_require(organization=org, feature="chains", user=root)
    chain = chain_create(actor=None, organization=org, by_user=root, data={"name": "Ops chain", "steps": steps})
    assert chain.pk
    with pytest.raises(ApiError) as refused:
        chain_create(actor=None, organization=org, by_user=alice, data={"name": "Alice's chain", "steps": steps})
    assert refused.value.code == "PlanFeatureUnavailable"


def test_max_agents_is_the_plans_limit(free, org, alice, client_for):
    api = client_for(alice)
    for n in range(free.max_agents):
        assert api.post("/api/v1/agents/", {**AGENT, "name": f"Agent {n}"}, format="json").status_code == 201
    error = assert_error(api.post("/api/v1/agents/", AGENT, format="json"), 403, "OrganizationLimitExceeded")
    assert error["details"]["resource_usage"] == {"max_agents": 3, "agents": 3}
    assert Agent.objects.filter(organization=org).count() == 3
    # Deleting one makes room again.
    first = Agent.objects.filter(organization=org).first()
    assert api.delete(f"/api/v1/agents/{first.pk}/").status_code == 204
    assert api.post("/api/v1/agents/", AGENT, format="json").status_code == 201
    # Platform agents (no organization) are not counted against anybody's plan.
    agent_create(actor=None, data={**AGENT, "name": "Platform one"})
