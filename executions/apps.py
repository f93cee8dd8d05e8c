from django.apps import AppConfig

from config import telemetry


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Agents' events are recorded and schedules follow agent changes (signals); chain,
        # trigger and webhook tasks register with Celery (autodiscovery only finds executions.tasks).
        from executions import events  # noqa: F401
        from executions.chains import tasks as chain_tasks  # noqa: F401
        from executions.triggers import signals, tasks  # noqa: F401
        from executions.webhooks import tasks as webhook_tasks  # noqa: F401

        # Before the web process loads its middleware: Django's instrumentation adds its own.
        telemetry.setup()
