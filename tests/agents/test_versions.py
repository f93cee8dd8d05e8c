"""Publishing, immutability of versions, rollback, and the field-by-field diff."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from agents import services
from agents.config import agent_version_config, config_diff
from agents.models import Agent, AgentStatus, AgentVersion, PublishedVersionImmutable
from agents.selectors import agent_has_unpublished_changes, agent_version_diff
from config.api.errors import ApiError
from tests.agents.conftest import actor_of, body
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def _edit(user, agent, **data):
    return services.agent_update(actor=actor_of(user), agent=agent, data=data)


def _publish(user, agent, **kw):
    return services.agent_publish(actor=actor_of(user), agent=agent, **kw)


def test_first_publish_is_1_0_0_then_minor_bumps(alice, make_agent):
    agent = make_agent(alice)
    first = _publish(alice, agent, changelog="initial")
    assert (first.version, first.changelog, first.created_by, first.is_current) == ("1.0.0", "initial", alice, True)
    _edit(alice, agent, system_prompt="Second take.")
    second = _publish(alice, agent)
    _edit(alice, agent, system_prompt="Third take.")
    third = _publish(alice, agent, bump="patch")
    _edit(alice, agent, system_prompt="Fourth take.")
    fourth = _publish(alice, agent, bump="major")
    assert [second.version, third.version, fourth.version] == ["1.1.0", "1.1.1", "2.0.0"]
    assert list(AgentVersion.objects.filter(agent=agent, is_current=True)) == [fourth]
    agent.refresh_from_db()
    assert agent.status == AgentStatus.PUBLISHED and agent.current_version == fourth


def test_given_version_must_be_semver_and_newer(alice, make_agent):
    agent = make_agent(alice)
    _publish(alice, agent, version="1.4.0")
    _edit(alice, agent, system_prompt="Changed.")
    for given, code in (("1.4.0", "VersionConflict"), ("1.3.9", "VersionConflict"), ("v2", "InvalidInput")):
        with pytest.raises(ApiError) as caught:
            _publish(alice, agent, version=given)
        assert caught.value.code == code, given
    assert AgentVersion.objects.filter(agent=agent).count() == 1
    assert _publish(alice, agent, version="1.10.0").version == "1.10.0"
    _edit(alice, agent, system_prompt="Again.")
    # 1.10.0 sorts after 1.9.x: numbers, not strings.
    assert _publish(alice, agent).version == "1.11.0"


def test_publishing_an_unchanged_draft_is_a_version_conflict(alice, published):
    with pytest.raises(ApiError) as caught:
        _publish(alice, published)
    assert caught.value.code == "VersionConflict"
    # Identity fields are not versioned: renaming is not a reason to publish.
    _edit(alice, published, name="Renamed Bot")
    assert not agent_has_unpublished_changes(Agent.objects.select_related("current_version").get(pk=published.pk))


def test_an_agent_without_any_prompt_cannot_be_published(alice, make_agent):
    agent = make_agent(alice, personality="", system_prompt="", goals=[], constraints=[])
    with pytest.raises(ApiError) as caught:
        _publish(alice, agent)
    assert caught.value.code == "InvalidAgentConfig"
    assert not AgentVersion.objects.filter(agent=agent).exists()


def test_published_versions_never_change(alice, published):
    version = published.current_version
    snapshot = dict(version.config)
    _edit(alice, published, system_prompt="A completely different job.", model_config={"temperature": 1.9})
    version.refresh_from_db()
    assert version.config == snapshot
    assert agent_version_config(version)["system_prompt"] == "You answer customer questions about Acme products."
    version.config = {"system_prompt": "tampered"}
    with pytest.raises(PublishedVersionImmutable) as caught:
        version.save()
    assert caught.value.code == "VersionConflict"
    version.refresh_from_db()
    assert version.config == snapshot


def test_snapshot_holds_every_runtime_field(alice, make_agent):
    agent = make_agent(
        alice,
        instructions="Be brief.",
        model_config={
            "provider": "openai",
            "model": "gpt-4o",
            "extra": {"seed": 3},
            "fallbacks": [{"provider": "anthropic", "model": "claude-sonnet-4-20250514"}],
        },
        input_schema={"type": "object"},
        denied_tools=["email_send"],
    )
    config = agent_version_config(_publish(alice, agent))
    for key in (
        "personality", "system_prompt", "instructions", "goals", "constraints", "examples", "allowed_tools",
        "denied_tools", "trigger_events", "trigger_schedule", "trigger_timezone", "trigger_conditions",
        "input_schema", "output_schema", "limits", "model_config", "agent_type",
    ):  # fmt: skip
        assert key in config, key
    assert config["model_config"]["extra"] == {"seed": 3}
    assert config["model_config"]["fallbacks"] == [{"provider": "anthropic", "model": "claude-sonnet-4-20250514"}]
    assert config["limits"]["max_runs_per_hour"] == 60
    assert config["instructions"] == "Be brief."


def test_rollback_makes_an_earlier_version_current_and_keeps_the_draft(alice, published):
    _edit(alice, published, system_prompt="Version two.")
    _publish(alice, published)
    _edit(alice, published, system_prompt="Unpublished work.")
    target = services.agent_rollback(actor=actor_of(alice), agent=published, version="1.0.0")
    published.refresh_from_db()
    assert published.current_version == target and target.version == "1.0.0"
    assert list(AgentVersion.objects.filter(agent=published, is_current=True).values_list("version", flat=True)) == [
        "1.0.0"
    ]
    assert published.system_prompt == "Unpublished work."
    # And forward again.
    services.agent_rollback(actor=actor_of(alice), agent=published, version="1.1.0")
    published.refresh_from_db()
    assert published.current_version.version == "1.1.0"


def test_rollback_to_a_missing_version_changes_nothing(alice, published):
    with pytest.raises(ApiError) as caught:
        services.agent_rollback(actor=actor_of(alice), agent=published, version="9.9.9")
    assert caught.value.code == "NotFound" and caught.value.status_code == 404
    published.refresh_from_db()
    assert published.current_version.version == "1.0.0"


def test_rollback_of_a_draft_is_refused(alice, make_agent):
    with pytest.raises(ApiError) as caught:
        services.agent_rollback(actor=actor_of(alice), agent=make_agent(alice), version="1.0.0")
    assert caught.value.code == "Conflict"


def test_config_diff_field_by_field():
    old = {"name": "A", "model_config": {"temperature": 0.7, "model": "gpt-4o"}, "goals": [1], "gone": 1}
    new = {"name": "A", "model_config": {"temperature": 0.2, "model": "gpt-4o", "seed": 1}, "goals": [1, 2], "fresh": 2}
    assert config_diff(old, new) == [
        {"field": "fresh", "change": "added", "from": None, "to": 2},
        {"field": "goals", "change": "changed", "from": [1], "to": [1, 2]},
        {"field": "gone", "change": "removed", "from": 1, "to": None},
        {"field": "model_config.seed", "change": "added", "from": None, "to": 1},
        {"field": "model_config.temperature", "change": "changed", "from": 0.7, "to": 0.2},
    ]
    assert config_diff(old, old) == []


def test_version_diff_between_versions_current_and_draft(alice, published):
    _edit(alice, published, model_config={"temperature": 0.9}, limits={"max_steps_per_run": 4}, allowed_tools=["crm_*"])
    _publish(alice, published)
    _edit(alice, published, constraints=["Never promise refunds", "Always cite the order number"])
    published = Agent.objects.select_related("current_version").get(pk=published.pk)
    diff = agent_version_diff(agent=published, from_ref="1.0.0", to_ref="1.1.0")
    assert diff["identical"] is False
    assert [(c["field"], c["from"], c["to"]) for c in diff["changes"]] == [
        ("allowed_tools", ["crm_*", "email_draft"], ["crm_*"]),
        ("limits.max_steps_per_run", 10, 4),
        ("model_config.temperature", 0.3, 0.9),
    ]
    to_draft = agent_version_diff(agent=published, from_ref="current", to_ref="draft")
    assert [c["field"] for c in to_draft["changes"]] == ["constraints"]
    assert agent_version_diff(agent=published, from_ref="1.1.0", to_ref="current")["identical"] is True
    with pytest.raises(ApiError):
        agent_version_diff(agent=published, from_ref="1.0.0", to_ref="3.0.0")


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishes_serialize_on_the_agent_row():
    """Two publishes of the same draft at once: one version, one VersionConflict."""
    org = OrganizationFactory()
    owner = UserFactory()
    MembershipFactory(user=owner, organization=org, role="owner")
    agent = services.agent_create(actor=actor_of(owner), data=body())
    results: list[str] = []
    barrier = threading.Barrier(2)

    def publish() -> None:
        try:
            barrier.wait()
            results.append(services.agent_publish(actor=actor_of(owner), agent=agent).version)
        except ApiError as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["1.0.0", "VersionConflict"]
    assert AgentVersion.objects.filter(agent=agent).count() == 1
