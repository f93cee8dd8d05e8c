from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Organizations & billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import schema  # noqa: F401  (registers the OpenAPI auth extensions)
