from django.urls import path, re_path

from doors.openai import views
from doors.openai.errors import not_found

urlpatterns = [
    path("models", views.ModelsView.as_view(), name="openai-models"),
    path("models/<str:model>", views.ModelView.as_view(), name="openai-model"),
    path("chat/completions", views.ChatCompletionsView.as_view(), name="openai-chat-completions"),
    path("responses", views.ResponsesView.as_view(), name="openai-responses"),
    path("responses/<str:response_id>", views.ResponseView.as_view(), name="openai-response"),
    re_path(r"", not_found),
]
