from django.urls import path
from rest_framework.routers import DefaultRouter

from executions.api.views import AgentExecutionsView, ExecuteAgentView, ExecutionViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("executions", ExecutionViewSet, basename="execution")

urlpatterns = [
    path("agents/<str:agent_id>/execute/", ExecuteAgentView.as_view(), name="agent-execute"),
    path("agents/<str:agent_id>/executions/", AgentExecutionsView.as_view(), name="agent-executions"),
    *router.urls,
]
