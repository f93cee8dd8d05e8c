from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: what looks across every other app (Prometheus metrics, the operator
    dashboard). It sits at the top of the layers, so ``config`` imports no app's models."""

    name = "ops"
    verbose_name = "Operations"
