from django.apps import AppConfig

from accounts.agent_lookup import agent_visible_set
from billing.report_sources import agent_names_set
from config.platform_sync import SYNC_STEPS


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents.access import agent_visible_to  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from agents.selectors import agent_names  # noqa: PLC0415

        # Billing's usage page names the top agents (billing sits below this app).
        agent_names_set(agent_names)
        # POST activity/ (accounts) logs for an agent only if the caller may see it.
        agent_visible_set(agent_visible_to)
        # `manage.py sync_platform` runs the steps apps register (config/platform_sync.py).
        step = "agents.services.agent_template_sync"
        if step not in SYNC_STEPS:
            SYNC_STEPS.append(step)
