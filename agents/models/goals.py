"""Agents' goals (``AgentGoal``, evaluated after runs and daily by ``agents.goals``) and the
reported values of their custom metrics (``GoalProgress``)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class GoalComparison(models.TextChoices):
    GT = "gt", ">"
    GTE = "gte", "≥"
    LT = "lt", "<"
    LTE = "lte", "≤"
    EQ = "eq", "="


class GoalWindow(models.TextChoices):
    ALL_TIME = "all_time", "All time"
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month (30 days)"


class AgentGoal(models.Model):
    """One entry of ``Agent.goals`` as a row, evaluated after runs and daily
    (agents.goals). Rows are kept in step with the JSON by ``agent_goals_sync``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="goal_records")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    success_metric = models.CharField(max_length=80, blank=True)
    target_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    comparison = models.CharField(max_length=4, choices=GoalComparison.choices, default=GoalComparison.GTE)
    window = models.CharField(max_length=10, choices=GoalWindow.choices, default=GoalWindow.ALL_TIME)
    is_recurring = models.BooleanField(default=True)
    deadline = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    current_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    is_achieved = models.BooleanField(default=False)
    achieved_at = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The agent's counters when the current window began: windowed values are the
    # difference between the counters now and these (see agents.goals).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_baseline = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="agentgoal_unique_name")]

    def __str__(self) -> str:
        return self.name


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
