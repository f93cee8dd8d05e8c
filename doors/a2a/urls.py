from django.urls import path, re_path

from config.api.errors import api_not_found
from doors.a2a import views

urlpatterns = [
    path("<str:agent_id>/.well-known/agent-card.json", views.AgentCardView.as_view(), name="a2a-agent-card"),
    path("<str:agent_id>/", views.JsonRpcView.as_view(), name="a2a-jsonrpc"),
    re_path(r"", api_not_found),
]
