"""Bad input gives a clear 4xx in the error shape, naming the field, and saves nothing."""

from __future__ import annotations

import pytest

from accounts.models import ActivityLog
from agents.models import Agent
from agents.validation import agent_config_validate, tool_is_allowed
from config.api.errors import ApiError
from executions.models import PlatformEvent
from tests.agents.conftest import body
from tests.conftest import assert_error
from tests.fakes.schema_canary import SCHEMA_SECRET

BAD_CONFIGS = [
    ({"model_config": {"provider": "skynet"}}, "model_config.provider"),
    ({"model_config": {"provider": "openai", "model": "gpt 9"}}, "model_config.model"),
    ({"model_config": {"provider": "openai", "model": "claude-sonnet-4-20250514"}}, "model_config.model"),
    ({"model_config": {"temperature": 2.5}}, "model_config.temperature"),
    ({"model_config": {"temperature": -0.1}}, "model_config.temperature"),
    ({"model_config": {"max_tokens": 0}}, "model_config.max_tokens"),
    ({"model_config": {"top_p": 1.5}}, "model_config.top_p"),
    ({"model_config": {"fallbacks": [{"provider": "anthropic", "model": "no pe"}]}}, "model_config.fallbacks.0.model"),
    ({"model_config": {"fallbacks": [{"provider": "anthropic", "model": "gpt-4o"}]}}, "model_config.fallbacks.0.model"),
    # Repeats the primary (gpt-4o, the default).
    ({"model_config": {"fallbacks": [{"provider": "openai", "model": "gpt-4o"}]}}, "model_config.fallbacks.0"),
    ({"model_config": {"fallbacks": [{"provider": "groq"}]}}, "model_config.fallbacks.0"),
    ({"model_config": {"extra": {"top_k": 5}}}, "model_config.extra.top_k"),
    ({"model_config": {"extra": {"seed": "seven"}}}, "model_config.extra.seed"),
    ({"model_config": {"extra": {"response_format": {"type": "yaml"}}}}, "model_config.extra.response_format"),
    ({"limits": {"max_steps_per_run": -1}}, "limits.max_steps_per_run"),
    ({"limits": {"timeout_seconds": 0}}, "limits.timeout_seconds"),
    ({"limits": {"timeout_seconds": 10**9}}, "limits.timeout_seconds"),
    ({"max_runs_per_day": -5}, "limits.max_runs_per_day"),
    ({"max_tool_calls_per_step": 0}, "limits.max_tool_calls_per_step"),
    ({"trigger_schedule": "61 * * * *"}, "trigger_schedule"),
    ({"trigger_schedule": "every monday"}, "trigger_schedule"),
    ({"trigger_schedule": "0 0 * * * *"}, "trigger_schedule"),
    ({"trigger_timezone": "Mars/Olympus_Mons"}, "trigger_timezone"),
    ({"input_schema": {"type": "nothing-like-this"}}, "input_schema"),
    ({"output_schema": {"properties": 5}}, "output_schema"),
    ({"input_schema": ["not", "an", "object"]}, "input_schema"),
    # Tenants' schemas never resolve remote references, loop forever or backtrack.
    ({"input_schema": {"$ref": "http://127.0.0.1:9/schema"}}, "input_schema"),
    (
        {"output_schema": {"type": "object", "properties": {"a": {"$ref": "https://example.test/a.json"}}}},
        "output_schema",
    ),
    ({"input_schema": {"$ref": "#"}}, "input_schema"),
    (
        {"output_schema": {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}},
        "output_schema",
    ),
    (
        {"input_schema": {"type": "object", "properties": {"q": {"type": "string", "pattern": "(?=x)y"}}}},
        "input_schema",
    ),
    ({"input_schema": {"$schema": 5}}, "input_schema"),
    ({"personality": 42}, "personality"),
    ({"personality": {"mood": "grumpy"}}, "personality.mood"),
    ({"personality": {"traits": "kind"}}, "personality.traits"),
    ({"goals": [{"name": "x", "comparison": "bigger"}]}, "goals.0.comparison"),
    ({"goals": [{"name": "x", "priority": 11}]}, "goals.0.priority"),
    ({"goals": [{"name": "x", "deadline": "2030-01-01T00:00:00"}]}, "goals.0.deadline"),
    ({"goals": [{"name": "x"}, {"name": "X"}]}, "goals.1.name"),
    ({"goals": [{"metric": "success_rate"}]}, "goals.0.name"),
    ({"examples": [{"input": "only half"}]}, "examples.0"),
    ({"constraints": ["  "]}, "constraints.0"),
    (
        {"constraints": [{"text": "ok", "requires_approval_for": ["bad pattern!"]}]},
        "constraints.0.requires_approval_for",
    ),
    ({"agent_type": "wizard"}, "agent_type"),
    ({"visibility": "secret"}, "visibility"),
    ({"allowed_tools": ["bad pattern!"]}, "allowed_tools.0"),
    ({"trigger_events": ["Bad Event"]}, "trigger_events.0"),
]


def _nothing_written(org) -> None:
    assert not Agent.objects.filter(organization=org).exists()
    assert not ActivityLog.objects.filter(organization=org, action__startswith="agent.").exists()
    assert not PlatformEvent.objects.filter(organization=org).exists()


@pytest.mark.parametrize(("overrides", "field"), BAD_CONFIGS)
def test_bad_config_is_refused_naming_the_field(
    overrides, field, alice, org, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post("/api/v1/agents/", body(**overrides), format="json")
    error = assert_error(response, 400, "InvalidAgentConfig")
    assert field in error["details"]["validation_errors"], error
    _nothing_written(org)


@pytest.mark.parametrize(
    "payload",
    [
        body(model_config={"temperature": "hot"}),
        body(model_config={"temprature": 0.2}),
        body(colour="blue"),
        body(limits={"max_steps": 3}),
        body(goals="be good"),
        {"description": "no name"},
        body(name="   "),
    ],
)
def test_malformed_body_is_invalid_input(payload, alice, org, client_for):
    assert_error(client_for(alice).post("/api/v1/agents/", payload, format="json"), 400, "InvalidInput")
    _nothing_written(org)


def test_non_object_body_is_refused(alice, org, client_for):
    assert_error(client_for(alice).post("/api/v1/agents/", [1, 2], format="json"), 400, "InvalidInput")
    _nothing_written(org)


def test_invalid_patch_changes_nothing(alice, make_agent, client_for):
    agent = make_agent(alice)
    before = Agent.objects.filter(pk=agent.pk).values().get()
    response = client_for(alice).patch(
        f"/api/v1/agents/{agent.pk}/",
        {"description": "new words", "model_config": {"temperature": 9}, "trigger_timezone": "Nowhere/Land"},
        format="json",
    )
    error = assert_error(response, 400, "InvalidAgentConfig")
    assert {"model_config.temperature", "trigger_timezone"} <= set(error["details"]["validation_errors"])
    assert Agent.objects.filter(pk=agent.pk).values().get() == before


@pytest.mark.parametrize(
    ("provider", "model", "extra"),
    [
        ("openai", "gpt-4o", {"seed": 7, "response_format": {"type": "json_object"}, "stop": ["END"]}),
        ("anthropic", "claude-sonnet-4-20250514", {"top_k": 40, "stop_sequences": ["\n\nHuman:"]}),
        ("openai_compatible", "llama3.1:8b", {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}),
        ("groq", "llama-3.3-70b-versatile", {"seed": 1, "parallel_tool_calls": False}),
    ],
)
def test_provider_specific_extras_are_validated_and_kept(provider, model, extra):
    config = agent_config_validate(
        _full(model_config={"provider": provider, "model": model, "temperature": 0.2, "extra": extra})
    )
    assert config["model_config"]["extra"] == extra


def test_extra_allowed_for_one_provider_is_refused_for_another():
    with pytest.raises(ApiError) as caught:
        agent_config_validate(
            _full(model_config={"provider": "anthropic", "model": "claude-sonnet-4-20250514", "extra": {"seed": 1}})
        )
    assert "model_config.extra.seed" in caught.value.details["validation_errors"]


def test_all_problems_are_reported_at_once():
    with pytest.raises(ApiError) as caught:
        agent_config_validate(
            _full(model_config={"provider": "openai", "model": "gpt-4o", "temperature": 5}, trigger_schedule="nope")
        )
    assert {"model_config.temperature", "trigger_schedule"} <= set(caught.value.details["validation_errors"])


def test_valid_json_schemas_of_any_draft_are_accepted():
    config = agent_config_validate(
        _full(
            input_schema={"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["q"]},
            output_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
        )
    )
    assert config["input_schema"]["required"] == ["q"]


def test_cron_is_normalised_and_decimals_rounded():
    config = agent_config_validate(_full(trigger_schedule="  */5   *  * * * ", model_config=_model(temperature=0.333)))
    assert config["trigger_schedule"] == "*/5 * * * *"
    assert config["model_config"]["temperature"] == 0.33


def test_unknown_tool_patterns_are_warnings_not_errors(alice, client_for):
    response = client_for(alice).post(
        "/api/v1/agents/",
        body(allowed_tools=["crm_*", "crm_get_contactz", "zzz_*"], denied_tools=["email_send"]),
        format="json",
    )
    assert response.status_code == 201, response.content
    warnings = response.json()["warnings"]
    assert len(warnings) == 2
    assert any("crm_get_contactz" in w for w in warnings) and any("zzz_*" in w for w in warnings)


def test_tool_warnings_use_the_registry_hook(alice, make_agent, client_for, monkeypatch):
    monkeypatch.setattr("agents.selectors.available_tool_names", lambda organization: ["billing_lookup"])
    agent = make_agent(alice, allowed_tools=["billing_*", "crm_*"])
    warnings = client_for(alice).get(f"/api/v1/agents/{agent.pk}/").json()["warnings"]
    assert warnings == ["allowed_tools: 'crm_*' matches no available tool."]


def test_tool_allow_and_deny_with_wildcards():
    assert tool_is_allowed("crm_get_contact", allowed=["crm_*"], denied=[])
    assert not tool_is_allowed("crm_delete_contact", allowed=["crm_*"], denied=["crm_delete_*"])
    assert not tool_is_allowed("email_send", allowed=["crm_*"], denied=[])


def _model(**kw):
    return {"provider": "openai", "model": "gpt-4o", "temperature": 0.7, "max_tokens": 100, **kw}


def _full(**overrides):
    from agents.config import default_config, merge_config

    return merge_config(default_config(), {"name": "Valid", **overrides})


def test_a_remote_reference_is_refused_without_being_fetched(alice, org, client_for, schema_document):
    url = schema_document.url("/secret")
    response = client_for(alice).post("/api/v1/agents/", body(input_schema={"$ref": url}), format="json")
    error = assert_error(response, 400, "InvalidAgentConfig")
    assert "outside this schema" in error["details"]["validation_errors"]["input_schema"][0]
    assert schema_document.requests == [] and SCHEMA_SECRET not in response.content.decode()
    _nothing_written(org)
