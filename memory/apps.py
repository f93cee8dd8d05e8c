from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    verbose_name = "Memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The knowledge_search tool's handler (its definition is a built-in of the tools app).
        from memory.tool_handlers import knowledge_search  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.handlers import register_handler  # noqa: PLC0415  (ready(): app modules load after the app registry)

        register_handler("knowledge_search", knowledge_search)
