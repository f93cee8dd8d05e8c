"""The operator's pages, at the URLs they always had (``/metrics``, ``/admin/dashboard/``)."""

from django.urls import path

from ops.dashboard import dashboard
from ops.metrics import metrics_view

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("metrics/", metrics_view),
    path("admin/dashboard/", dashboard, name="admin-dashboard"),
]
