from celery.signals import worker_shutting_down
from django.apps import AppConfig

from billing.report_sources import run_counts_set
from config import telemetry
from executions.runtime.shutdown import request_handback


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Agents' events are recorded and schedules follow agent changes (signals); chain,
        # trigger and webhook tasks register with Celery (autodiscovery only finds executions.tasks).
        from executions import events  # noqa: F401, PLC0415  (ready(): app modules load after the app registry)
        from executions.chains import tasks as chain_tasks  # noqa: F401, PLC0415  (ready(): app modules load after the app registry)
        from executions.selectors import run_counts  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from executions.triggers import signals, tasks  # noqa: F401, PLC0415  (ready(): app modules load after the app registry)
        from executions.webhooks import tasks as webhook_tasks  # noqa: F401, PLC0415  (ready(): app modules load after the app registry)

        # Billing's usage report counts runs (billing sits below this app).
        run_counts_set(run_counts)

        # Before the web process loads its middleware: Django's instrumentation adds its own.
        telemetry.setup()

        # SIGTERM to a worker: its runs stop at the next step boundary and are queued again
        # for another worker (executions/runtime/shutdown.py).
        worker_shutting_down.connect(request_handback, weak=False, dispatch_uid="executions.handback")
