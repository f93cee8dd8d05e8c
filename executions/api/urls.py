from django.urls import path
from rest_framework.routers import DefaultRouter

from executions.api.chains import ChainExecutionViewSet, ChainRunViewSet
from executions.api.triggers import (
    EventView,
    HookSecretView,
    HookView,
    ScheduleViewSet,
    TriggerAttemptViewSet,
)
from executions.api.views import AgentExecutionsView, ExecuteAgentView, ExecutionViewSet
from executions.api.webhooks import EventLogViewSet, EventTypeView, WebhookEndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("executions", ExecutionViewSet, basename="execution")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("trigger-attempts", TriggerAttemptViewSet, basename="trigger-attempt")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("event-log", EventLogViewSet, basename="event-log")
# Only chains/{id}/execute/: the definitions under chains/ are agents' (agents.api.urls).
router.register("chains", ChainRunViewSet, basename="chain")
router.register("chain-executions", ChainExecutionViewSet, basename="chain-execution")

urlpatterns = [
    path("agents/<str:agent_id>/execute/", ExecuteAgentView.as_view(), name="agent-execute"),
    path("agents/<str:agent_id>/executions/", AgentExecutionsView.as_view(), name="agent-executions"),
    path("agents/<str:agent_id>/hook-secret/", HookSecretView.as_view(), name="agent-hook-secret"),
    path("events/", EventView.as_view(), name="events"),
    path("event-types/", EventTypeView.as_view(), name="event-types"),
    path("hooks/<str:agent_id>/", HookView.as_view(), name="hook"),
    *router.urls,
]
