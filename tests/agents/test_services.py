"""The agent services: create, edit, delete, lifecycle, events and the activity log."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import ActivityLog
from agents import services
from agents.models import Agent, AgentGoal, AgentStatus, AgentVersion
from agents.selectors import agent_is_runnable, agent_version_warnings
from agents.signals import agent_event
from config.api.errors import ApiError
from executions.events import _agent_event
from executions.models import PlatformEvent
from tests.agents.conftest import actor_of, body


def _events(org, event_type=None):
    qs = PlatformEvent.objects.filter(organization=org).order_by("created_at")
    if event_type:
        qs = qs.filter(event_type=event_type)
    return list(qs)


def test_create_applies_defaults_and_records_it(alice, org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        agent = services.agent_create(actor=actor_of(alice), data={"name": "Plain", "system_prompt": "Help."})
    agent.refresh_from_db()
    assert agent.organization == org and agent.created_by == alice and agent.slug == "plain"
    assert (agent.llm_provider, agent.llm_model, agent.max_tokens, agent.max_steps_per_run) == (
        "openai",
        "gpt-4o",
        4096,
        10,
    )
    assert agent.status == AgentStatus.DRAFT and agent.is_active is False
    [event] = _events(org, "ai.agent.created")
    assert event.payload == {"id": str(agent.pk), "name": "Plain", "type": "assistant", "domain": ""}
    assert ActivityLog.objects.filter(organization=org, action="agent.created", agent_id=agent.pk, user=alice).exists()


def test_events_commit_or_roll_back_with_their_change(alice, org):
    # The event log is a transactional outbox: the event row lives and dies with its change.
    from django.db import transaction

    services.agent_create(actor=actor_of(alice), data=body(name="Kept"))
    assert [e.event_type for e in _events(org)] == ["ai.agent.created"]
    with pytest.raises(RuntimeError), transaction.atomic():
        services.agent_create(actor=actor_of(alice), data=body(name="Rolled back"))
        raise RuntimeError("the surrounding change fails")
    assert len(_events(org)) == 1


def test_duplicate_names_are_refused_case_insensitively_per_organization(alice, oscar, org, other_org):
    services.agent_create(actor=actor_of(alice), data=body(name="Helper"))
    with pytest.raises(ApiError) as caught:
        services.agent_create(actor=actor_of(alice), data=body(name="  HELPER "))
    assert caught.value.code == "DuplicateAgentName"
    assert Agent.objects.filter(organization=org).count() == 1
    # Another organization may use the name.
    assert services.agent_create(actor=actor_of(oscar), data=body(name="Helper")).organization == other_org


def test_slug_is_made_unique(alice):
    first = services.agent_create(actor=actor_of(alice), data=body(name="Sales Bot"))
    second = services.agent_create(actor=actor_of(alice), data=body(name="Sales-Bot"))
    assert (first.slug, second.slug) == ("sales-bot", "sales-bot-2")
    with pytest.raises(ApiError) as caught:
        services.agent_create(actor=actor_of(alice), data=body(name="Third", slug="sales-bot"))
    assert caught.value.code == "InvalidAgentConfig"


def test_rename_onto_a_taken_name_saves_nothing(alice, make_agent):
    make_agent(alice, name="Taken")
    agent = make_agent(alice, name="Free")
    with pytest.raises(ApiError) as caught:
        services.agent_update(actor=actor_of(alice), agent=agent, data={"name": "taken", "description": "changed"})
    assert caught.value.code == "DuplicateAgentName"
    agent.refresh_from_db()
    assert (agent.name, agent.description) == ("Free", "Answers support questions.")


def test_update_merges_model_config_and_reports_changes(alice, org, make_agent, django_capture_on_commit_callbacks):
    agent = make_agent(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_update(
            actor=actor_of(alice),
            agent=agent,
            data={"model_config": {"temperature": 1.2}, "limits": {"timeout_seconds": 60}},
        )
    agent.refresh_from_db()
    assert (agent.llm_model, str(agent.temperature), agent.timeout_seconds) == ("gpt-4o-mini", "1.20", 60)
    [event] = _events(org, "ai.agent.updated")
    assert event.payload["changes"] == ["limits.timeout_seconds", "model_config.temperature"]
    log = ActivityLog.objects.get(organization=org, action="agent.updated")
    assert log.request_summary == {"changes": ["limits.timeout_seconds", "model_config.temperature"]}


def test_update_without_changes_writes_nothing(alice, org, make_agent, django_capture_on_commit_callbacks):
    agent = make_agent(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_update(actor=actor_of(alice), agent=agent, data={"domain": "support"})
    assert not _events(org, "ai.agent.updated")


def test_goal_rows_follow_the_goals_field(alice, make_agent):
    agent = make_agent(alice, goals=[{"name": "A", "metric": "total_runs", "target": 1}, "B"])
    assert list(AgentGoal.objects.filter(agent=agent).values_list("name", "success_metric")) == [
        ("A", "total_runs"),
        ("B", ""),
    ]
    keep = AgentGoal.objects.get(agent=agent, name="B")
    services.agent_update(
        actor=actor_of(alice),
        agent=agent,
        data={"goals": [{"name": "B", "priority": 9}, {"name": "C", "metric": "success_rate", "target": 50}]},
    )
    rows = {g.name: g for g in AgentGoal.objects.filter(agent=agent)}
    assert set(rows) == {"B", "C"}
    assert rows["B"].pk == keep.pk and rows["B"].priority == 9
    assert (rows["C"].success_metric, rows["C"].target_value) == ("success_rate", 50)


def test_soft_delete_keeps_versions_and_frees_the_name(alice, org, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_delete(actor=actor_of(alice), agent=published)
    published.refresh_from_db()
    assert published.deleted_at is not None and published.is_active is False
    assert AgentVersion.objects.filter(agent=published).count() == 1
    assert _events(org, "ai.agent.deleted")[0].payload == {"id": str(published.pk), "name": "Published Bot"}
    assert services.agent_create(actor=actor_of(alice), data=body(name="Published Bot")).pk != published.pk
    with pytest.raises(ApiError) as caught:
        services.agent_update(actor=actor_of(alice), agent=published, data={"description": "ghost"})
    assert caught.value.code == "AgentNotFound"


# --- lifecycle ----------------------------------------------------------------------------


def test_draft_cannot_be_deprecated_archived_or_activated(alice, make_agent):
    agent = make_agent(alice)
    for service in (services.agent_deprecate, services.agent_archive, services.agent_activate):
        with pytest.raises(ApiError) as caught:
            service(actor=actor_of(alice), agent=agent)
        assert caught.value.code == "Conflict"
    agent.refresh_from_db()
    assert agent.status == AgentStatus.DRAFT and not agent.is_active
    assert not agent_is_runnable(agent)


def test_activate_and_deactivate_emit_once(alice, org, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_activate(actor=actor_of(alice), agent=published)
        services.agent_activate(actor=actor_of(alice), agent=published)
        services.agent_deactivate(actor=actor_of(alice), agent=published)
        services.agent_deactivate(actor=actor_of(alice), agent=published)
    assert [e.event_type for e in _events(org) if "activated" in e.event_type] == [
        "ai.agent.activated",
        "ai.agent.deactivated",
    ]
    published.refresh_from_db()
    assert published.is_active is False


def test_deprecated_agent_still_runs_with_a_warning_and_is_frozen(alice, published):
    services.agent_deprecate(actor=actor_of(alice), agent=published)
    published.refresh_from_db()
    assert published.status == AgentStatus.DEPRECATED and agent_is_runnable(published)
    assert published.current_version.deprecated_at is not None
    assert "deprecated" in agent_version_warnings(published.current_version)[0]
    with pytest.raises(ApiError) as caught:
        services.agent_update(actor=actor_of(alice), agent=published, data={"system_prompt": "new"})
    assert caught.value.code == "VersionConflict"
    # Identity fields stay editable.
    services.agent_update(actor=actor_of(alice), agent=published, data={"description": "Being retired."})
    with pytest.raises(ApiError) as caught:
        services.agent_publish(actor=actor_of(alice), agent=published)
    assert caught.value.code == "Conflict"


def test_archived_agent_never_runs_and_is_read_only(alice, org, published, django_capture_on_commit_callbacks):
    services.agent_activate(actor=actor_of(alice), agent=published)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_archive(actor=actor_of(alice), agent=published)
    published.refresh_from_db()
    assert published.status == AgentStatus.ARCHIVED and not published.is_active
    assert not agent_is_runnable(published)
    assert _events(org, "ai.agent.deactivated")
    with pytest.raises(ApiError) as caught:
        services.agent_update(actor=actor_of(alice), agent=published, data={"description": "x"})
    assert caught.value.code == "VersionConflict"
    for service in (services.agent_activate, services.agent_archive, services.agent_deprecate):
        with pytest.raises(ApiError):
            service(actor=actor_of(alice), agent=published)


def test_services_check_object_rights(mia, vic, alice, make_agent):
    agent = make_agent(alice)
    with pytest.raises(ApiError) as caught:
        services.agent_update(actor=actor_of(mia), agent=agent, data={"description": "mine now"})
    assert caught.value.code == "InsufficientPermissions"
    with pytest.raises(ApiError) as caught:
        services.agent_create(actor=actor_of(vic), data=body(name="Viewer's"))
    assert caught.value.code == "InsufficientPermissions"


def test_deleted_at_is_timezone_aware(alice, make_agent):
    agent = make_agent(alice)
    services.agent_delete(actor=actor_of(alice), agent=agent)
    agent.refresh_from_db()
    assert timezone.is_aware(agent.deleted_at)


def test_every_change_is_in_the_activity_log(alice, vic, org, make_agent):
    actor = actor_of(alice)
    agent = make_agent(alice)
    services.agent_update(actor=actor, agent=agent, data={"instructions": "Be brief."})
    services.agent_publish(actor=actor, agent=agent)
    services.agent_update(actor=actor, agent=agent, data={"instructions": "Be briefer."})
    services.agent_publish(actor=actor, agent=agent)
    services.agent_rollback(actor=actor, agent=agent, version="1.0.0")
    services.agent_activate(actor=actor, agent=agent)
    services.agent_deactivate(actor=actor, agent=agent)
    services.agent_grant(actor=actor, agent=agent, user=vic.pk, permission="read")
    services.agent_revoke(actor=actor, agent=agent, user=vic.pk)
    services.agent_deprecate(actor=actor, agent=agent)
    services.agent_archive(actor=actor, agent=agent)
    services.agent_delete(actor=actor, agent=agent)
    actions = list(
        ActivityLog.objects.filter(organization=org, agent_id=agent.pk)
        .order_by("created_at")
        .values_list("action", flat=True)
    )
    assert actions == [
        "agent.created", "agent.updated", "agent.published", "agent.updated", "agent.published", "agent.rolled_back",
        "agent.activated", "agent.deactivated", "agent.granted", "agent.revoked", "agent.deprecated",
        "agent.archived", "agent.deleted",
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_name_give_one_agent():
    import threading

    from django.db import connection

    from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

    org = OrganizationFactory()
    owner = UserFactory()
    MembershipFactory(user=owner, organization=org, role="owner")
    barrier = threading.Barrier(4)
    results: list[str] = []

    def create() -> None:
        try:
            barrier.wait()
            services.agent_create(actor=actor_of(owner), data=body(name="Racer"))
            results.append("created")
        except ApiError as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["DuplicateAgentName"] * 3 + ["created"]
    assert Agent.objects.filter(organization=org).count() == 1


def test_a_lost_name_race_still_answers_duplicate_agent_name(alice, org, monkeypatch):
    """The check before the insert can pass for two requests; the unique index decides."""
    services.agent_create(actor=actor_of(alice), data=body(name="Racer"))
    monkeypatch.setattr("agents.services.agents.ensure_name_free", lambda **kw: None)
    with pytest.raises(ApiError) as caught:
        services.agent_create(actor=actor_of(alice), data=body(name="racer"))
    assert caught.value.code == "DuplicateAgentName"
    assert Agent.objects.filter(organization=org).count() == 1


def test_an_agent_event_nobody_receives_is_logged_not_lost_quietly(alice, org, caplog):
    # agents sends its events as a signal (it imports nothing of executions); the executions
    # app records them. Without that receiver the event cannot be written, and the log says so.
    assert agent_event.disconnect(sender=Agent, dispatch_uid="agentry_platform_event_from_agents")
    try:
        agent = services.agent_create(actor=actor_of(alice), data=body(name="Unheard"))
    finally:
        agent_event.connect(_agent_event, sender=Agent, dispatch_uid="agentry_platform_event_from_agents")
    assert _events(org) == []
    assert f"ai.agent.created of agent {agent.pk} is not recorded" in caplog.text
    services.agent_update(actor=actor_of(alice), agent=agent, data={"description": "Heard again."})
    assert [e.event_type for e in _events(org)] == ["ai.agent.updated"]
