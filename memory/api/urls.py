from django.urls import path
from rest_framework.routers import DefaultRouter

from memory.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("knowledge-bases", views.KnowledgeBaseViewSet, basename="knowledge-base")

urlpatterns = [
    path("agents/<str:agent_id>/memories/", views.AgentMemoryListView.as_view(), name="agent-memories"),
    # Before the detail route, which would otherwise take "search" for a memory id.
    path("agents/<str:agent_id>/memories/search/", views.AgentMemorySearchView.as_view(), name="agent-memory-search"),
    path("agents/<str:agent_id>/memories/<str:memory_id>/", views.AgentMemoryDetailView.as_view(), name="agent-memory"),
    path("agents/<str:agent_id>/conversations/", views.AgentConversationListView.as_view(), name="agent-conversations"),
    path(
        "agents/<str:agent_id>/conversations/<str:conversation_id>/",
        views.AgentConversationDetailView.as_view(),
        name="agent-conversation",
    ),
    path("agents/<str:agent_id>/episodes/", views.AgentEpisodeListView.as_view(), name="agent-episodes"),
    *router.urls,
]
