"""Chain tasks. Their names are the ones they had under ``agents.tasks`` (queued messages and
the beat schedule name them), so a deploy does not strand a message in flight.

Beat entry (config/celery.py): ``agents.chains_tick`` every 30 seconds.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="agents.chain_advance", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def chain_advance_task(chain_execution_id: str) -> None:
    """Advance one chain execution (io queue: its steps run agents in-process)."""
    from executions.chains.runner import chain_advance  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    chain_advance(chain_execution_id=chain_execution_id)


@shared_task(name="agents.chains_tick", ignore_result=True)
def chains_tick() -> int:
    """Beat job: time out waiting steps past their timeout; hand back chains nobody advances."""
    from executions.chains.services import chains_due  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    ids = chains_due()
    for chain_execution_id in ids:
        chain_advance_task.apply_async(args=[str(chain_execution_id)], queue="io")
    return len(ids)
