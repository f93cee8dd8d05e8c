"""What agents can do (DESIGN.md §6).

- ``Tool``: the registry (reference ``ai_agent_tools``). System tools (``organization`` NULL,
  ``is_system``) are seeded by ``manage.py sync_tools`` and visible to every organization;
  an organization's own HTTP tools are visible to it alone. An MCP server's tools are rows
  too (``mcp_server`` set), written by its sync: an organization's server's for it alone, a
  platform server's for the organizations it is shared with.
- ``McpServer``: an MCP server whose tools agents may use (``tools/mcp/``): an organization's
  over the network, or the platform's (operators only; also local stdio processes).
- ``ToolCall``: every call an agent asked for, made or refused (reference ``ai_agent_tool_calls``).
- ``AgentCapabilityGrant``: what an agent may touch in one organization (the reference's
  AgentPermissions); a tool whose ``requires_permissions`` are not all granted is refused.
- ``ModuleEndpoint``: where an organization's CRM, calendar, SMS gateway and search API answer.
- ``Task``, ``EmailDraft``, ``Notification``: the rows the built-in tools write.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config.crypto import EncryptedTextField


class Capability(models.TextChoices):
    """The reference's AgentPermissions, as the words ``requires_permissions`` uses."""

    READ_CONTACTS = "read_contacts", "Read contacts"
    WRITE_CONTACTS = "write_contacts", "Write contacts"
    DELETE_CONTACTS = "delete_contacts", "Delete contacts"
    READ_DEALS = "read_deals", "Read deals"
    WRITE_DEALS = "write_deals", "Write deals"
    READ_FINANCIALS = "read_financials", "Read financials"
    SEND_EMAILS = "send_emails", "Send emails"
    SEND_SMS = "send_sms", "Send SMS"
    MAKE_API_CALLS = "make_api_calls", "Make API calls"
    TRIGGER_WORKFLOWS = "trigger_workflows", "Trigger workflows"
    ACCESS_WEB = "access_web", "Access the web"
    ACCESS_EXTERNAL_APIS = "access_external_apis", "Access external APIs"
    CREATE_TASKS = "create_tasks", "Create tasks"
    MODIFY_SETTINGS = "modify_settings", "Modify settings"


class HandlerType(models.TextChoices):
    INTERNAL = "internal", "Platform function"
    MODULE = "module", "Organization module endpoint"
    EXTERNAL = "external", "External service"
    WORKFLOW = "workflow", "Workflow or agent run"
    HTTP = "http", "Organization HTTP tool"
    MCP = "mcp", "MCP server tool"


class Tool(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # NULL: a platform tool every organization sees.
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="tools"
    )
    name = models.CharField(max_length=64)
    display_name = models.CharField(max_length=120)
    description = models.TextField()
    category = models.CharField(max_length=40)
    parameters_schema = models.JSONField(default=dict)
    returns_schema = models.JSONField(null=True, blank=True)
    handler_type = models.CharField(max_length=16, choices=HandlerType.choices)
    # internal: {"handler"}; module: {"module", "action"}; http: {"url", "method", "headers"}.
    handler_config = models.JSONField(default=dict, blank=True)
    # HTTP tools: header values that are secrets, as encrypted JSON ({"Authorization": "…"}).
    secret_headers = EncryptedTextField(blank=True, default="")
    requires_permissions = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    requires_modules = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_per_hour = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(default=30)
    # Safe to call again after a crash mid-call (reads, or writes deduplicated by the call's key).
    is_idempotent = models.BooleanField(default=False)
    is_dangerous = models.BooleanField(default=False)  # always waits for a person
    # Its answers carry content from outside the platform and the organization (web pages,
    # third-party APIs): what a run learns after calling it is trusted less (memory).
    untrusted_output = models.BooleanField(default=False, db_default=False)
    is_system = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # Set on the tools an MCP server's sync wrote (handler type mcp); they go with the server.
    # Indexed concurrently (migration 0003), not by the column's own index.
    mcp_server = models.ForeignKey(
        "tools.McpServer", null=True, blank=True, db_index=False, on_delete=models.CASCADE, related_name="tool_rows"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "name"]
        indexes = [models.Index(fields=["mcp_server"], name="tool_mcp_server")]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(organization__isnull=True), name="tool_system_name"),
            models.UniqueConstraint(
                fields=["organization", "name"], condition=Q(organization__isnull=False), name="tool_org_name"
            ),
        ]
        permissions = [("grant_capabilities", "Can grant capabilities to agents")]

    def __str__(self) -> str:
        return self.name


class McpTransport(models.TextChoices):
    STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
    SSE = "sse", "HTTP with SSE (legacy)"
    STDIO = "stdio", "Local process over stdio (platform servers only)"


class McpServerStatus(models.TextChoices):
    PENDING = "pending"  # never synced yet
    OK = "ok"
    ERROR = "error"  # the last sync failed: see last_error; the tools of the sync before stay


class McpServer(models.Model):
    """An MCP server whose tools agents may use; its tools are ``Tool`` rows named
    ``mcp__<name>__<tool>``, written by its sync (``tools.mcp.services.mcp_server_sync``).

    ``organization`` NULL: a platform server, defined by operators (the admin, or the
    ``AGENTRY_MCP_STDIO_SERVERS`` setting) and seen by the organizations in ``shared_with``
    (or all of them). Only those may be ``stdio`` (a command the workers start).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="mcp_servers"
    )
    name = models.CharField(max_length=32)
    description = models.TextField(blank=True)
    transport = models.CharField(max_length=16, choices=McpTransport.choices, default=McpTransport.STREAMABLE_HTTP)
    url = models.CharField(max_length=2000, blank=True)
    # JSON {"Authorization": "Bearer …"}, encrypted; never shown (only the names).
    headers = EncryptedTextField(blank=True, default="")
    # stdio (platform servers): the command, its arguments, and its environment (encrypted
    # JSON: it may carry the server's own credentials).
    command = models.CharField(max_length=500, blank=True)
    args = models.JSONField(default=list, blank=True)
    env = EncryptedTextField(blank=True, default="")
    # Written from the AGENTRY_MCP_STDIO_SERVERS setting (tools.mcp.platform), not the admin.
    from_setting = models.BooleanField(default=False, db_default=False)
    shared_with_all = models.BooleanField(default=False, db_default=False)
    shared_with = models.ManyToManyField("accounts.Organization", blank=True, related_name="+")
    # What its tools answer is content from outside (as an organization's HTTP tool's).
    untrusted_output = models.BooleanField(default=True, db_default=True)
    timeout_seconds = models.PositiveSmallIntegerField(default=30, db_default=30)
    is_active = models.BooleanField(default=True)
    # What the last sync found: [{"name", "tool_name", "description", "input_schema",
    # "annotations", "offered", "warning"}]; tools not offered say why in "warning".
    tools = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=McpServerStatus.choices, default=McpServerStatus.PENDING)
    last_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # The server said its tools changed (notifications/tools/list_changed): sync again soon.
    sync_requested_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(organization__isnull=True), name="mcp_server_platform_name"
            ),
            models.UniqueConstraint(
                fields=["organization", "name"], condition=Q(organization__isnull=False), name="mcp_server_org_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ToolCallStatus(models.TextChoices):
    PENDING = "pending"  # held for a person's approval
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DENIED = "denied"


class ToolCall(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="tool_calls")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="tool_calls")
    # NULL for a name the registry does not know (the call is logged all the same).
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    tool_name = models.CharField(max_length=120)
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.CASCADE, related_name="tool_call_log"
    )
    step_number = models.PositiveIntegerField(null=True, blank=True)
    # "<execution>:<step>": a call re-run after a crash finds its row (and its result) here.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    input_params = models.JSONField(null=True, blank=True)
    output_result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ToolCallStatus.choices, default=ToolCallStatus.RUNNING)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_used = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["organization", "-started_at"], name="toolcall_org_started"),
            models.Index(fields=["execution", "step_number"], name="toolcall_execution"),
            models.Index(fields=["agent", "-started_at"], name="toolcall_agent_started"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


class AgentCapabilityGrant(models.Model):
    """What one agent may do when it runs for one organization.

    Kept here rather than on the agent: granting ``send_sms`` is an administrator's
    decision, not part of the agent's versioned configuration that its builders edit, and a
    platform agent gets its own grants in every organization that runs it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="capability_grants")
    capabilities = ArrayField(models.CharField(max_length=40, choices=Capability.choices), default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "agent"], name="capability_grant_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id}: {', '.join(self.capabilities) or 'nothing'}"


class Module(models.TextChoices):
    CRM = "crm", "CRM"
    BOOKING = "booking", "Calendar / booking"
    SMS = "sms", "SMS gateway"
    SEARCH = "search", "Web search API"


class ModuleEndpoint(models.Model):
    """Where one of an organization's modules answers; the tools needing it call it here.

    CRM and calendar tools POST ``{base_url}/{action}`` with the arguments as JSON; the SMS
    gateway gets ``{"to", "message"}``; the search API ``{"q", "num"}``. ``secret`` goes in
    the ``auth_header`` header and is encrypted at rest.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="module_endpoints")
    module = models.CharField(max_length=16, choices=Module.choices)
    base_url = models.URLField(max_length=500)
    auth_header = models.CharField(max_length=80, default="Authorization", blank=True)
    secret = EncryptedTextField(blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["module"]
        constraints = [models.UniqueConstraint(fields=["organization", "module"], name="module_endpoint_unique")]

    def __str__(self) -> str:
        return f"{self.get_module_display()} → {self.base_url}"


class TaskStatus(models.TextChoices):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(models.Model):
    """A to-do an agent created (``task_create``) for people of the organization."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    priority = models.CharField(max_length=8, default="medium")
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    due_date = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The creating call's key: a call repeated after a crash finds its task instead of adding one.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="task_org_created")]

    def __str__(self) -> str:
        return self.title


class EmailDraft(models.Model):
    """An email an agent wrote for a person to review (``email_draft``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="email_drafts")
    to = ArrayField(models.CharField(max_length=254), default=list)
    subject = models.CharField(max_length=500)
    body = models.TextField()
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subject


class EmailTemplate(models.Model):
    """An organization's email, rendered by ``email_send`` with ``template_id`` (tools.email_templates):
    Django's template language on plain data only, autoescaped body, bounded size."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="email_templates")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    subject = models.CharField(max_length=500)
    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_email_template_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class NotificationChannel(models.TextChoices):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"


class Notification(models.Model):
    """A message for one person: written by ``notify_user`` and by the platform (approvals)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="agentry_notifications"
    )
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices, default=NotificationChannel.IN_APP)
    recipient = models.CharField(max_length=254, blank=True)  # the address or number it went to
    title = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="notification_user_created")]

    def __str__(self) -> str:
        return f"{self.channel}: {self.message[:60]}"
