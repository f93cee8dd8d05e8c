from rest_framework.routers import DefaultRouter

from approvals.api.views import ApprovalViewSet, RiskRuleViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("approvals", ApprovalViewSet, basename="approval")
router.register("approval-rules", RiskRuleViewSet, basename="approval-rule")

urlpatterns = router.urls
