from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals.policy import approval_requirement, organization_rules  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from approvals.selectors import risk_rules_subquery  # noqa: PLC0415  (ready(): app modules load after the app registry)
        from tools.approval_policy import ApprovalPolicy, approval_policy_set  # noqa: PLC0415  (ready(): app modules load after the app registry)

        # The tool gateway (below this app) asks this policy before every call.
        approval_policy_set(
            ApprovalPolicy(
                rules_subquery=risk_rules_subquery,
                organization_rules=organization_rules,
                requirement=approval_requirement,
            )
        )
