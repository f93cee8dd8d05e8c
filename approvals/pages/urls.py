from django.urls import path

from approvals.pages import views

app_name = "approvals"

urlpatterns = [
    path("", views.approval_list, name="list"),
    path("<uuid:approval_id>/", views.approval_detail, name="detail"),
    path("<uuid:approval_id>/approve/", views.approval_decide, {"decision": "approve"}, name="approve"),
    path("<uuid:approval_id>/deny/", views.approval_decide, {"decision": "deny"}, name="deny"),
]
