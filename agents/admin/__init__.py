"""Admin for operators: agents with their versions, goals and grants; templates; overrides.

Edits go through the same validation and services as the API (``agents.services``), so the
admin cannot save what the API would refuse, and changes are logged and emitted alike.
Platform agents (no organization) are visible and editable by superusers only: the scoping
of OrganizationScopedAdmin leaves them out of every organization admin's queryset.
"""

from agents.admin import agent, chains, connections, related  # noqa: F401  (registers the ModelAdmins)
