"""OpenAPI pieces shared by views: the error shape (DESIGN.md §11) as a documented response."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from config.api.errors import ERROR_CODES

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
                "timestamp": serializers.DateTimeField(),
                "request_id": serializers.CharField(),
            },
        )
    },
)


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """{status: response} documenting these error codes (codes sharing a status share one)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        status: OpenApiResponse(
            ErrorSerializer, description="; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in names)
        )
        for status, names in by_status.items()
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Yours, per agent or chain: the same key with the same body returns the first run "
    "(header Idempotent-Replayed); with another body, 422 IdempotencyKeyMismatch.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag you read: the change applies only if the resource is unchanged since (else 412 "
    "PreconditionFailed). Without it, the last write wins.",
)
ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=True,
    description="The draft's entity tag, for If-Match on the next change.",
)


# --- The document as a reader meets it (a drf-spectacular postprocessing hook) ---------------
# Operations grouped by resource, each with a summary, the errors it can answer documented in
# the error shape, and one way to authenticate listed once.

TAGS: list[tuple[str, str, tuple[str, ...]]] = [
    ("Agents", "Create, edit, publish and version agents; templates, the marketplace, platform agents.",
     ("agents", "agent-templates", "marketplace", "platform-agents")),
    ("Executions", "Run an agent, follow a run (steps, logs, the SSE stream), cancel it.",
     ("executions", "agents/execute", "agents/executions")),
    ("Chains", "Agents run one after another, each step's output feeding the next.", ("chains", "chain-executions")),
    ("Triggers & webhooks", "Schedules, events, inbound hooks, outbound webhooks and their deliveries.",
     ("schedules", "trigger-attempts", "events", "event-types", "hooks", "webhooks", "event-log", "agents/hook-secret")),
    ("Tools & MCP", "The tool catalogue, MCP servers, module endpoints, calls made, capability grants, "
     "e-mail templates, tasks and notifications.",
     ("tools", "mcp-servers", "module-endpoints", "tool-calls", "agents/capabilities", "email-templates",
      "notifications")),
    ("Approvals", "Held tool calls waiting for a person, and the rules that hold them.",
     ("approvals", "approval-rules")),
    ("Memory & knowledge", "An agent's memories, conversations and episodes; knowledge bases and their documents.",
     ("agents/memories", "agents/conversations", "agents/episodes", "knowledge-bases")),
    ("Usage & billing", "Usage, cost, quotas and alerts.", ("usage", "alerts", "agents/metrics")),
    ("Organizations", "API tokens, roles, the activity log, who may use an agent, provider connections.",
     ("tokens", "activity", "organization", "agents/permissions", "provider-connections")),
    ("Operations", "Health of the platform's parts.", ("health",)),
]  # fmt: skip
_VERBS = {"get": "Get", "put": "Replace", "patch": "Update", "delete": "Delete", "post": "Create"}
PUBLIC_PATHS = ("/api/v1/health/", "/api/v1/hooks/")
# Where the rule below reads badly (one object behind a collection-like path, a search, a stream).
SUMMARIES: dict[tuple[str, str], str] = {
    ("get", "/api/v1/agents/{agent_id}/capabilities/"): "Get an agent's capability grants",
    ("put", "/api/v1/agents/{agent_id}/capabilities/"): "Set an agent's capability grants",
    ("get", "/api/v1/agents/{agent_id}/hook-secret/"): "Get the inbound hook's secret",
    ("post", "/api/v1/agents/{agent_id}/hook-secret/"): "Rotate the inbound hook's secret",
    ("get", "/api/v1/agents/{agent_id}/memories/search/"): "Search an agent's memories",
    ("get", "/api/v1/agents/{id}/metrics/"): "Get an agent's metrics",
    ("post", "/api/v1/agents/{id}/permissions/"): "Grant a person a permission on an agent",
    ("delete", "/api/v1/agents/{id}/permissions/"): "Revoke a person's permission on an agent",
    ("get", "/api/v1/agents/{id}/versions/compare/"): "Compare two versions field by field",
    ("post", "/api/v1/agents/from-template/"): "Create an agent from a template",
    ("post", "/api/v1/alerts/{id}/read/"): "Mark an alert read",
    ("post", "/api/v1/notifications/{id}/read/"): "Mark a notification read",
    ("post", "/api/v1/events/"): "Send an event (starts subscribed agents)",
    ("get", "/api/v1/executions/{id}/stream/"): "Stream a run's events (Server-Sent Events)",
    ("get", "/api/v1/health/"): "Health of the platform's parts",
    ("post", "/api/v1/hooks/{agent_id}/"): "Start an agent from an inbound webhook (signed)",
    ("get", "/api/v1/knowledge-bases/{id}/search/"): "Search a knowledge base",
    ("post", "/api/v1/marketplace/{id}/copy/"): "Copy a public agent into your organization",
    ("get", "/api/v1/marketplace/{id}/"): "Get a public agent",
    ("get", "/api/v1/marketplace/"): "List public agents",
    ("get", "/api/v1/organization/roles/"): "Get the organization's role permissions",
    ("put", "/api/v1/organization/roles/"): "Set the organization's role permissions",
    ("get", "/api/v1/platform-agents/{id}/configuration/"): "Get your configuration of a platform agent",
    ("put", "/api/v1/platform-agents/{id}/configuration/"): "Set your configuration of a platform agent",
    ("delete", "/api/v1/platform-agents/{id}/configuration/"): "Remove your configuration of a platform agent",
    ("get", "/api/v1/usage/"): "Usage and cost, grouped",
    ("get", "/api/v1/usage/quota/"): "Quota and spend against budgets",
    ("post", "/api/v1/webhooks/{id}/rotate-secret/"): "Rotate a webhook's signing secret",
}
_PLURALS = {"memories": "memory", "capabilities": "capability", "activity": "activity", "entries": "entry"}


def _words(path: str) -> list[str]:
    return [part for part in path.split("/")[3:] if part and not part.startswith("{")]


def tag_of(path: str) -> str:
    words = _words(path)
    keys = ["/".join(words[:2]), words[0] if words else ""]
    for key in keys:  # the most specific prefix wins (agents/execute before agents)
        for name, _description, prefixes in TAGS:
            if key in prefixes:
                return name
    return (words[0] if words else "api").replace("-", " ").capitalize()


def summary_of(path: str, method: str) -> str:
    words = _words(path)
    if not words:
        return method.upper()
    last = words[-1].replace("-", " ")
    singular = _PLURALS.get(last, last[:-1] if last.endswith("s") and not last.endswith("ss") else last)
    on_item = path.rstrip("/").endswith("}")
    if method == "get":
        return f"Get {singular}" if on_item else f"List {last}"
    if method == "post" and len(words) > 1 and not on_item:
        owner = words[-2].replace("-", " ")
        owner = owner[:-1] if owner.endswith("s") else owner
        # An action on a resource (publish, execute, cancel) or a sub-collection to add to.
        return (
            f"{last.capitalize()} ({owner})" if last not in ("documents", "memories", "versions") else f"Add {singular}"
        )
    return f"{_VERBS[method]} {singular}"


def _errors_for(path: str, method: str, operation: dict) -> list[str]:
    queried = any(p.get("in") == "query" for p in operation.get("parameters", []))
    codes = ["InvalidInput"] if method in ("post", "put", "patch") or queried else []
    if method in ("post", "put", "patch"):
        codes.append("MalformedRequest")
    if not path.startswith(PUBLIC_PATHS):
        codes += ["NotAuthenticated", "InvalidToken", "TokenExpired", "TokenRevoked", "InsufficientPermissions"]
    if "{" in path:
        codes.append("NotFound")
    codes.append("RateLimitExceeded")
    return [code for code in codes if code in ERROR_CODES]


def organize(result: dict, generator: object, request: object, public: bool) -> dict:
    """POSTPROCESSING_HOOKS entry (after drf-spectacular's enum hook)."""
    result["tags"] = [{"name": name, "description": description} for name, description, _ in TAGS]
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    # Sessions work too (the console's pages call the API with the admin's cookie), but an API
    # client has one way in: a bearer token. Listed once, at the top.
    schemes.pop("sessionAuth", None)
    result["security"] = [{"bearerAuth": []}]
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _VERBS:
                continue
            operation["tags"] = [tag_of(path)]
            operation.setdefault("summary", SUMMARIES.get((method, path)) or summary_of(path, method))
            if path.startswith(PUBLIC_PATHS):
                operation["security"] = []
            else:
                operation.pop("security", None)  # the document's one scheme applies
            responses = operation.setdefault("responses", {})
            by_status: dict[str, list[str]] = {}
            for code in _errors_for(path, method, operation):
                by_status.setdefault(str(ERROR_CODES[code][0]), []).append(code)
            for status, documented in responses.items():
                if status.startswith("4") and "content" not in documented:
                    documented["content"] = {"application/json": {"schema": error_ref}}  # every error has the shape
            for status, codes in by_status.items():
                if status in responses:
                    continue
                responses[status] = {
                    "description": "; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in codes),
                    "content": {"application/json": {"schema": error_ref}},
                }
    return result
