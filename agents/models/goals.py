"""Reported values of goals' custom metrics (issue #20: goals can be measured)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class GoalProgress(models.Model):
    """A reported value of a goal's custom metric (one the platform does not measure):
    the history; the newest value is the goal's ``current_value``."""

    id = models.BigAutoField(primary_key=True)
    goal = models.ForeignKey("agents.AgentGoal", on_delete=models.CASCADE, related_name="progress")
    value = models.DecimalField(max_digits=18, decimal_places=4)
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["goal", "-recorded_at", "-id"]
        indexes = [models.Index(fields=["goal", "-recorded_at"], name="goalprogress_goal_recorded")]

    def __str__(self) -> str:
        return f"{self.goal_id} = {self.value} @ {self.recorded_at:%Y-%m-%d %H:%M}"
