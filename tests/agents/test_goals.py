"""Goals measured from the agent's counters; stats recorded with F(); the runtime state."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents import services
from agents.goals import metric_value
from agents.models import Agent, AgentGoal
from agents.selectors import agent_list, agent_metrics, agent_runtime_state, agent_stats
from agents.tasks import evaluate_agent_goals, evaluate_all_agent_goals
from tests.agents.conftest import actor_of

D = Decimal


def _record(agent, status, **kw):
    services.agent_stats_record_run(agent_id=agent.pk, status=status, started=False, **kw)


def _goal(agent, name):
    return AgentGoal.objects.get(agent=agent, name=name)


@pytest.fixture
def no_enqueue(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(evaluate_agent_goals, "delay", calls.append)
    return calls


def test_metrics_from_counters():
    counters = {
        "total_runs": D(10), "successful_runs": D(7), "failed_runs": D(2), "cancelled_runs": D(1),
        "total_tokens_used": D(5000), "total_actions_taken": D(12), "total_cost": D("0.50"),
        "total_duration_ms": D(25000),
    }  # fmt: skip
    assert metric_value("success_rate", counters) == D("70.0000")
    assert metric_value("avg_tokens", counters) == D("500.0000")
    assert metric_value("avg_cost", counters) == D("0.0500")
    assert metric_value("avg_response_time_ms", counters) == D("2500.0000")
    assert metric_value("failure_rate", counters) == D("20.0000")
    assert metric_value("leads_qualified_per_day", counters) is None
    # Over a window: the difference with the baseline.
    baseline = {"total_runs": "8", "successful_runs": "7"}
    assert metric_value("success_rate", counters, baseline) == D("0.0000")
    assert metric_value("total_runs", counters, baseline) == D("2.0000")
    zero = dict.fromkeys(counters, D(0))
    assert metric_value("success_rate", zero) is None


def test_stats_are_counted_with_f_expressions(alice, make_agent, no_enqueue, django_capture_on_commit_callbacks):
    agent = make_agent(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_run_started(agent_id=agent.pk)
        services.agent_stats_record_run(
            agent_id=agent.pk, status="completed", tokens=1000, actions=2, cost=D("0.010"), duration_ms=3000
        )
        _record(agent, "timed_out", tokens=500, duration_ms=1000, error="")
        _record(agent, "failed", tokens=100, duration_ms=2000, error="LLM said no")
        _record(agent, "cancelled")
    agent.refresh_from_db()
    # Cancelled runs are counted apart: not in total_runs, nor in the response-time average.
    assert (agent.total_runs, agent.successful_runs, agent.failed_runs, agent.cancelled_runs) == (3, 1, 2, 1)
    assert (agent.total_tokens_used, agent.total_actions_taken, agent.total_cost) == (1600, 2, D("0.010000"))
    assert agent.total_duration_ms == 6000 and agent.avg_response_time_ms == 2000
    assert agent.last_error == "LLM said no" and agent.last_run_status == "cancelled"
    assert agent.active_runs == 0
    stats = agent_stats(agent)
    assert (stats["success_rate"], stats["avg_tokens"], stats["avg_cost"]) == (33.33, 533.33, "0.003333")
    assert no_enqueue == [str(agent.pk)] * 4  # it has a goal: each run queues its evaluation
    with pytest.raises(ValueError):
        _record(agent, "running")


def test_an_agent_without_goals_queues_no_evaluation(alice, make_agent, no_enqueue, django_capture_on_commit_callbacks):
    agent = make_agent(alice, name="Goalless", goals=[])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _record(agent, "completed", tokens=10)
    assert callbacks == []
    agent.refresh_from_db()
    assert agent.total_runs == 1
    assert no_enqueue == []  # no task, no queue hop, no worker connection for nothing


def test_runtime_state_is_derived(alice, published, no_enqueue):
    def state() -> str:
        return agent_list(actor=actor_of(alice)).get(pk=published.pk).runtime_state

    assert state() == "offline"  # published but inactive
    services.agent_activate(actor=actor_of(alice), agent=published)
    assert state() == "idle"
    services.agent_run_started(agent_id=published.pk)
    assert state() == "busy"
    services.agent_stats_record_run(agent_id=published.pk, status="failed", error="boom")
    assert state() == "error"
    _record(published, "completed")
    assert state() == "idle"
    services.agent_archive(actor=actor_of(alice), agent=published)
    assert state() == "offline"
    published.refresh_from_db()
    assert agent_runtime_state(published) == "offline"


def test_goal_is_achieved_and_shown_in_metrics(alice, make_agent, no_enqueue):
    agent = make_agent(
        alice,
        goals=[
            {"name": "Reliable", "metric": "success_rate", "target": 80},
            {"name": "Cheap", "metric": "avg_cost", "target": 0.01, "comparison": "lte"},
            {"name": "Leads", "metric": "leads_qualified_per_day", "target": 20},
        ],
    )
    assert _goal(agent, "Reliable").current_value is None  # nothing measured yet
    for _ in range(4):
        _record(agent, "completed", cost=D("0.005"))
    _record(agent, "failed")
    evaluate_agent_goals(str(agent.pk))
    reliable, cheap, leads = _goal(agent, "Reliable"), _goal(agent, "Cheap"), _goal(agent, "Leads")
    assert (reliable.current_value, reliable.is_achieved) == (D("80.0000"), True)
    assert reliable.achieved_at is not None
    assert (cheap.current_value, cheap.is_achieved) == (D("0.0040"), True)
    assert (leads.current_value, leads.is_achieved) == (None, False)
    metrics = agent_metrics(agent=Agent.objects.get(pk=agent.pk))
    by_name = {g["name"]: g for g in metrics["goals"]}
    assert by_name["Reliable"]["status"] == "achieved" and by_name["Reliable"]["current_value"] == "80.0000"
    assert metrics["total_runs"] == 5 and metrics["success_rate"] == 80.0


def test_recurring_goal_can_be_lost_one_off_goal_is_kept(alice, make_agent, no_enqueue):
    agent = make_agent(
        alice,
        goals=[
            {"name": "Recurring", "metric": "success_rate", "target": 100},
            {"name": "Once", "metric": "success_rate", "target": 100, "is_recurring": False},
        ],
    )
    _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent)
    assert _goal(agent, "Recurring").is_achieved and _goal(agent, "Once").is_achieved
    _record(agent, "failed")
    services.agent_goals_evaluate(agent=agent)
    recurring, once = _goal(agent, "Recurring"), _goal(agent, "Once")
    assert (recurring.is_achieved, recurring.achieved_at, recurring.current_value) == (False, None, D("50.0000"))
    assert once.is_achieved and once.current_value == D("100.0000")


def test_deadline_freezes_the_goal(alice, make_agent, no_enqueue):
    deadline = timezone.now() + timedelta(days=1)
    agent = make_agent(
        alice, goals=[{"name": "Ten runs", "metric": "total_runs", "target": 10, "deadline": deadline.isoformat()}]
    )
    _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent)
    assert _goal(agent, "Ten runs").current_value == D("1.0000")
    for _ in range(12):
        _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent, now=deadline + timedelta(seconds=1))
    goal = _goal(agent, "Ten runs")
    assert goal.current_value == D("1.0000") and not goal.is_achieved
    metrics = agent_metrics(agent=Agent.objects.get(pk=agent.pk))
    assert metrics["goals"][0]["status"] == "in_progress"  # deadline is tomorrow in real time
    from agents.goals import goal_status

    assert goal_status(goal, deadline + timedelta(seconds=1)) == "missed"


def test_daily_window_measures_only_its_own_runs(alice, make_agent, no_enqueue):
    agent = make_agent(alice, goals=[{"name": "Daily", "metric": "total_runs", "target": 3, "window": "day"}])
    start = _goal(agent, "Daily").window_started_at  # the first evaluation, when the goal was made
    assert start is not None
    for _ in range(3):
        _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent, now=start + timedelta(hours=5))
    goal = _goal(agent, "Daily")
    assert (goal.current_value, goal.is_achieved) == (D("3.0000"), True)
    # Next day: a new window counting from zero again, on the same cadence.
    services.agent_goals_evaluate(agent=agent, now=start + timedelta(days=1, hours=1))
    goal = _goal(agent, "Daily")
    assert goal.window_started_at == start + timedelta(days=1)
    assert (goal.current_value, goal.is_achieved) == (D("0.0000"), False)
    _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent, now=start + timedelta(days=1, hours=2))
    assert _goal(agent, "Daily").current_value == D("1.0000")
    # After a gap of more than a window the next one starts at the evaluation itself.
    later = start + timedelta(days=5)
    services.agent_goals_evaluate(agent=agent, now=later)
    assert _goal(agent, "Daily").window_started_at == later


def test_changing_a_goal_definition_restarts_it(alice, make_agent, no_enqueue):
    agent = make_agent(alice, goals=[{"name": "G", "metric": "total_runs", "target": 1}])
    _record(agent, "completed")
    services.agent_goals_evaluate(agent=agent)
    assert _goal(agent, "G").is_achieved
    services.agent_update(
        actor=actor_of(alice), agent=agent, data={"goals": [{"name": "G", "metric": "total_runs", "target": 5}]}
    )
    goal = _goal(agent, "G")
    assert not goal.is_achieved and goal.current_value == D("1.0000") and goal.target_value == 5


def test_daily_sweep_evaluates_every_agent_with_goals(alice, make_agent, no_enqueue):
    with_goals = make_agent(alice, name="With", goals=[{"name": "G", "metric": "total_runs", "target": 1}])
    make_agent(alice, name="Without", goals=[])
    _record(with_goals, "completed")
    assert evaluate_all_agent_goals() == 1
    assert _goal(with_goals, "G").is_achieved
    assert evaluate_agent_goals("00000000-0000-0000-0000-000000000000") == 0
