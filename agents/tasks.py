"""Goal evaluation: after each run (enqueued by agent_stats_record_run) and daily.

Beat entry to declare in config/celery.py beat_schedule:
    "agents.evaluate-goals": {"task": "agents.tasks.evaluate_all_agent_goals",
                              "schedule": crontab(minute=5, hour=0), "options": {"expires": 3600}}
"""

from __future__ import annotations

from celery import shared_task

from agents.models import Agent
from agents.services import agent_goals_evaluate, agent_goals_evaluate_all


@shared_task(name="agents.tasks.evaluate_agent_goals")
def evaluate_agent_goals(agent_id: str) -> int:
    agent = Agent.objects.filter(pk=agent_id).only("pk").first()
    if agent is None:
        return 0
    return len(agent_goals_evaluate(agent=agent))


@shared_task(name="agents.tasks.evaluate_all_agent_goals")
def evaluate_all_agent_goals() -> int:
    return agent_goals_evaluate_all()


@shared_task(name="agents.chain_advance", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def chain_advance_task(chain_execution_id: str) -> None:
    """Advance one chain execution (io queue: its steps run agents in-process)."""
    from agents.services.chain_runner import chain_advance

    chain_advance(chain_execution_id=chain_execution_id)


@shared_task(name="agents.chains_tick", ignore_result=True)
def chains_tick() -> int:
    """Beat job: time out waiting steps past their timeout; hand back chains nobody advances."""
    from agents.services.chains import chains_due

    ids = chains_due()
    for chain_execution_id in ids:
        chain_advance_task.apply_async(args=[str(chain_execution_id)], queue="io")
    return len(ids)
