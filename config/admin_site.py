"""The operator console: Django's admin, branded and with its index grouped by task.

We keep the stock admin and give it our own stylesheet and templates rather than switching
to a theme such as django-unfold: the console runs under a CSP with no inline script and no
``eval`` (config/headers.py), which unfold's Alpine.js front end does not, and the pages we
add (trace, playground, usage, version diff) extend the stock templates, so a theme would have
to be matched page by page. The result in the screenshots (tests/ops/test_console_browser.py)
is what decided it.

The index groups models by what an operator is doing (agents, runs, approvals, ...) instead
of by Django app; a model nobody placed lands in "Advanced", so nothing registered ever
disappears from the index.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# (group name, [(app_label, model_name), ...]) in index order. Both app labels are listed
# for the tenant models, which move from ``billing`` to ``accounts``.
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Agents",
        [
            ("agents", "agent"),
            ("agents", "agentversion"),
            ("agents", "agenttemplate"),
            ("agents", "agentgoal"),
            ("agents", "agentconfiguration"),
            ("agents", "agentchain"),
            ("agents", "providerconnection"),
        ],
    ),
    (
        "Runs",
        [
            ("executions", "execution"),
            ("agents", "chainexecution"),
            ("executions", "scheduledexecution"),
            ("executions", "triggerattempt"),
            ("executions", "webhookendpoint"),
            ("executions", "webhookdelivery"),
            ("executions", "platformevent"),
        ],
    ),
    ("Approvals", [("approvals", "approvalrequest"), ("approvals", "riskrule")]),
    (
        "Memory & knowledge",
        [
            ("memory", "memory"),
            ("memory", "conversation"),
            ("memory", "episode"),
            ("memory", "knowledgebase"),
            ("memory", "document"),
            ("memory", "knowledgechunk"),
        ],
    ),
    (
        "Tools & MCP",
        [
            ("tools", "tool"),
            ("tools", "mcpserver"),
            ("tools", "agentcapabilitygrant"),
            ("tools", "toolcall"),
            ("tools", "moduleendpoint"),
            ("tools", "task"),
            ("tools", "emaildraft"),
            ("tools", "notification"),
        ],
    ),
    (
        "Usage & billing",
        [
            ("billing", "usagerecord"),
            ("billing", "dailyusage"),
            ("billing", "usageperiod"),
            ("billing", "alert"),
            ("billing", "plan"),
            ("billing", "modelprice"),
        ],
    ),
    (
        "Organizations",
        [
            (label, model)
            for model in ("organization", "membership", "apitoken", "activitylog")
            for label in ("accounts", "billing")
        ]
        + [("auth", "user"), ("auth", "group")],
    ),
]
ADVANCED = "Advanced"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


class AgentrySite(admin.AdminSite):
    site_header = "Agentry console"
    site_title = "Agentry console"
    index_title = "Console"
    index_template = "admin/index.html"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps  # an app's own page stays as Django built it
        return group_app_list(apps)


def group_app_list(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-group Django's per-app list into the task groups; same dict shape, so the stock
    index and sidebar templates render it."""
    by_key = {(app["app_label"], m["object_name"].lower()): m for app in apps for m in app["models"]}
    groups: list[dict[str, Any]] = []
    placed: set[tuple[str, str]] = set()
    for name, keys in [*GROUPS, (ADVANCED, [])]:
        if name == ADVANCED:
            keys = [k for k in by_key if k not in placed]
        models = [by_key[k] for k in keys if k in by_key and k not in placed]
        placed.update(k for k in keys if k in by_key)
        if models:
            groups.append(
                {
                    "name": name,
                    "app_label": _slug(name),
                    "app_url": models[0]["admin_url"],
                    "has_module_perms": True,
                    "models": models,
                    "group": True,
                }
            )
    return groups


class ConsoleAdminConfig(AdminConfig):
    """Installed in place of ``django.contrib.admin``: the same admin on our site class."""

    default_site = "config.admin_site.AgentrySite"
