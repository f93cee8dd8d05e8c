from django.apps import AppConfig

from config.platform_sync import SYNC_STEPS


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # `manage.py sync_platform` runs the steps apps register (config/platform_sync.py).
        step = "agents.services.agent_template_sync"
        if step not in SYNC_STEPS:
            SYNC_STEPS.append(step)
