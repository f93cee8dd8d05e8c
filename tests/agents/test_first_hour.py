"""The agent body as a newcomer writes it: ``model_config.connection_id`` and models Agentry
does not list yet (issue 19, the first hour)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.services.agents import agent_create
from agents.services.connections import provider_connection_create
from agents.services.versions import agent_publish
from bench.fakes.script import text
from billing.models import UsageRecord
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.agents.conftest import body
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_model_config_connection_id_is_accepted_and_checked(org, other_org, alice, client_for, owner_actor):
    api = client_for(alice)
    connection = provider_connection_create(actor=owner_actor, data={"provider": "openai", "name": "Ours"})
    model = {"provider": "openai", "model": "gpt-4o-mini", "connection_id": str(connection.pk)}
    created = api.post("/api/v1/agents/", body(model_config=model), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["model_config"]["connection_id"] == str(connection.pk)
    url = f"/api/v1/agents/{created.json()['id']}/"
    cleared = api.patch(url, {"model_config": {"connection_id": None}}, format="json")
    assert cleared.status_code == 200 and cleared.json()["model_config"]["connection_id"] is None

    # Not a UUID, another provider's, and another organization's: refused, nothing saved.
    other = provider_connection_create(
        actor=None, data={"provider": "anthropic", "name": "Platform Claude"}, platform=True
    )
    for value, code in (("not-a-uuid", "InvalidInput"), (str(other.pk), "InvalidAgentConfig")):
        error = assert_error(api.patch(url, {"model_config": {"connection_id": value}}, format="json"), 400, code)
        assert "model_config.connection_id" in error["details"]["validation_errors"], error
    assert api.get(url).json()["model_config"]["connection_id"] is None


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-3-5-sonnet-20241022"), ("openai", "gpt-4-turbo")]
)
def test_an_unknown_model_of_a_known_provider_is_accepted_with_a_warning(alice, client_for, provider, model):
    api = client_for(alice)
    created = api.post("/api/v1/agents/", body(model_config={"provider": provider, "model": model}), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["model_config"]["model"] == model
    [warning] = [w for w in created.json()["warnings"] if w.startswith("model_config.model")]
    assert f"{model!r} is not in Agentry's {provider} catalog" in warning
    assert "default price" in warning and "priced_by_default" in warning
    # A catalog model warns nothing.
    catalog_model = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}[provider]
    known = api.patch(
        f"/api/v1/agents/{created.json()['id']}/", {"model_config": {"model": catalog_model}}, format="json"
    )
    assert known.status_code == 200, known.content
    assert not any(w.startswith("model_config") for w in known.json()["warnings"])


def test_model_names_are_still_checked_and_providers_still_refused(alice, client_for):
    api = client_for(alice)
    for model_config, field, code in (
        ({"provider": "openai", "model": "gpt 4 turbo"}, "model_config.model", "InvalidAgentConfig"),
        ({"provider": "openai", "model": "gpt-4o\nX"}, "model_config.model", "InvalidAgentConfig"),
        ({"provider": "openai", "model": ""}, "model_config.model", "InvalidInput"),
        ({"provider": "mystery", "model": "gpt-4o"}, "model_config.provider", "InvalidAgentConfig"),
        ({"provider": "openai", "model": "gpt-4o", "fallbacks": [{"provider": "openai", "model": "a b"}]},
         "model_config.fallbacks.0.model", "InvalidAgentConfig"),
    ):  # fmt: skip
        error = assert_error(api.post("/api/v1/agents/", body(model_config=model_config), format="json"), 400, code)
        assert field in error["details"]["validation_errors"], (model_config, error)


def test_a_fallback_model_not_in_the_catalog_is_warned_about(alice, client_for):
    model_config = {
        "provider": "openai",
        "model": "gpt-4o",
        "fallbacks": [{"provider": "openai", "model": "gpt-4-turbo"}],
    }
    created = client_for(alice).post("/api/v1/agents/", body(model_config=model_config), format="json")
    assert created.status_code == 201, created.content
    assert any(w.startswith("model_config.fallbacks.0.model: 'gpt-4-turbo'") for w in created.json()["warnings"])


@pytest.mark.django_db(transaction=True)
def test_an_unknown_model_runs_at_the_default_price_flagged_in_usage(
    org, alice, owner_actor, client_for, providers_at_fake, settings
):
    settings.DEFAULT_MODEL_PRICE = ("10", "30")
    agent = agent_create(
        actor=owner_actor,
        data={
            "name": "Turbo",
            "system_prompt": "You greet.",
            "model_config": {"provider": "openai", "model": "gpt-4-turbo", "temperature": 0.2},
        },
    )
    agent_publish(actor=owner_actor, agent=agent)
    agent.refresh_from_db()
    providers_at_fake.script(text("done"))
    execution, _ = execution_start(agent=agent, organization=org, task="Hello")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert providers_at_fake.chat_requests[0].body["model"] == "gpt-4-turbo"  # sent as named
    record = UsageRecord.objects.get(execution=execution)
    assert record.priced_by_default is True
    expected = (Decimal(record.tokens_input) * 10 + Decimal(record.tokens_output) * 30) / Decimal(1_000_000)
    assert record.cost == expected.quantize(Decimal("0.000001"))
    api = client_for(alice)
    [row] = api.get("/api/v1/usage/?group_by=model").json()["results"]
    assert (row["key"], row["llm_calls"], row["priced_by_default_calls"]) == ("gpt-4-turbo", 1, 1)
    [by_day] = api.get("/api/v1/usage/?group_by=day").json()["results"]
    assert by_day["priced_by_default_calls"] == 1
    assert "priced_by_default_calls" in api.get("/api/v1/usage/?group_by=model&format=csv").content.decode()
