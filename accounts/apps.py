from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organizations & access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model  # noqa: PLC0415  (ready(): models are loaded now)
        from django.db.models.signals import post_delete, post_save  # noqa: PLC0415

        from accounts import auth_cache  # noqa: PLC0415
        from accounts.models import ApiToken, Membership, Organization  # noqa: PLC0415

        # A cached token's answer is voided by any change that could change it (auth_cache).
        for model in (ApiToken, Membership, Organization, get_user_model()):
            post_save.connect(auth_cache.on_change, sender=model, dispatch_uid=f"auth_cache_save_{model.__name__}")
            post_delete.connect(auth_cache.on_change, sender=model, dispatch_uid=f"auth_cache_delete_{model.__name__}")
        from accounts import schema  # noqa: F401, PLC0415  (registers the OpenAPI auth extensions; ready(): app modules load after the app registry)
