"""Goal evaluation: after each run (enqueued by agent_stats_record_run) and daily.

The chain tasks (``agents.chain_advance``, ``agents.chains_tick``) keep their names in
``executions.chains.tasks``.

Beat entry to declare in config/celery.py beat_schedule:
    "agents.evaluate-goals": {"task": "agents.tasks.evaluate_all_agent_goals",
                              "schedule": crontab(minute=5, hour=0), "options": {"expires": 3600}}
"""

from __future__ import annotations

from celery import shared_task

from agents.models import Agent


@shared_task(name="agents.tasks.evaluate_agent_goals")
def evaluate_agent_goals(agent_id: str) -> int:
    from agents.services import agent_goals_evaluate  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    agent = Agent.objects.filter(pk=agent_id).only("pk").first()
    if agent is None:
        return 0
    return len(agent_goals_evaluate(agent=agent))


@shared_task(name="agents.tasks.evaluate_all_agent_goals")
def evaluate_all_agent_goals() -> int:
    from agents.services import agent_goals_evaluate_all  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    return agent_goals_evaluate_all()
