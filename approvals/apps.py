from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals.models import RiskRule  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from approvals.policy import approval_requirement, organization_rules  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from approvals.selectors import risk_rules_subquery  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.approval_policy import ApprovalPolicy, approval_policy_set  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.view_cache import registry_changed  # noqa: PLC0415  (ready(): app modules load after the app registry)

        # The tool gateway (below this app) asks this policy before every call.
        approval_policy_set(
            ApprovalPolicy(
                rules_subquery=risk_rules_subquery,
                organization_rules=organization_rules,
                requirement=approval_requirement,
            )
        )
        # Risk rules ride in the tool gateway's cached view of a run (tools.view_cache).
        post_save.connect(registry_changed, sender=RiskRule, dispatch_uid="agentry_tool_registry_RiskRule_save")
        post_delete.connect(registry_changed, sender=RiskRule, dispatch_uid="agentry_tool_registry_RiskRule_delete")
