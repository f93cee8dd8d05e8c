from django.apps import AppConfig

from billing.report_sources import agent_names_set
from config.platform_sync import SYNC_STEPS


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents.selectors import agent_names  # noqa: PLC0415  (ready(): app modules load after the app registry)

        # Billing's usage page names the top agents (billing sits below this app).
        agent_names_set(agent_names)
        # `manage.py sync_platform` runs the steps apps register (config/platform_sync.py).
        step = "agents.services.agent_template_sync"
        if step not in SYNC_STEPS:
            SYNC_STEPS.append(step)
