"""Billing's usage reports read runs and agents' names through what the apps above register."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from agents.selectors import agent_names
from billing import report_sources
from executions.selectors import run_counts


def test_the_apps_above_register_their_sources():
    assert report_sources._run_counts is run_counts
    assert report_sources._agent_names is agent_names


def test_a_report_without_sources_refuses_rather_than_shows_no_runs(monkeypatch):
    monkeypatch.setattr(report_sources, "_run_counts", None)
    monkeypatch.setattr(report_sources, "_agent_names", None)
    with pytest.raises(ImproperlyConfigured):
        report_sources.run_counts(organization=None, start=None, end=None, group_by="day")
    with pytest.raises(ImproperlyConfigured):
        report_sources.agent_names([])
