"""Tools that call an organization's HTTP services: CRM and calendar modules, the SMS
gateway, the search API, and the organization's own HTTP tools. All through ``tools.ssrf``."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from tools.builtins.base import Invocation, ToolError
from tools.builtins.crm_events import crm_event_emit
from tools.selectors import module_endpoint_for, tool_secret_headers
from tools.ssrf import FetchResult, fetch

MODULE_MAX_BYTES = 1024 * 1024
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _endpoint(organization_id: Any, module: str) -> Any:
    endpoint = module_endpoint_for(organization_id=organization_id, module=module)
    if endpoint is None:
        raise ToolError(f"This organization has no {module} module configured.")
    return endpoint


def _answer(result: FetchResult, what: str, call: Invocation) -> Any:
    # The gateway redacts what the call carried from the answer; an error body is cut
    # here, so it is redacted before the cut (a cut secret would be harder to recognise).
    if result.status_code >= 400:
        body = call.redacted(result.text)[:500]
        raise ToolError(f"{what} answered HTTP {result.status_code}: {body}")
    if result.content_type.endswith("json") and result.content:
        try:
            return result.json()
        except ValueError as exc:
            raise ToolError(f"{what} sent JSON that does not parse.") from exc
    return {"status": result.status_code, "text": result.text}


def module_request(
    *,
    call: Invocation,
    module: str,
    action: str,
    payload: dict[str, Any],
    context: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Any:
    """POST ``{base_url}/{action}`` with ``payload`` as JSON; the parsed answer."""
    organization_id = call.organization_id
    endpoint = _endpoint(organization_id, module)
    url = endpoint.base_url.rstrip("/") + (f"/{action}" if action else "")
    headers = {"Accept": "application/json", "X-Agentry-Organization": str(organization_id), **(context or {})}
    if endpoint.secret:
        call.carry(endpoint.secret)
        headers[endpoint.auth_header or "Authorization"] = endpoint.secret
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    result = fetch(
        "POST",
        url,
        json=payload,
        headers=headers,
        deadline=call.deadline,
        max_bytes=MODULE_MAX_BYTES,
        # The module holds a secret of ours: never carry it wherever a redirect points.
        follow_redirects=False,
    )
    return _answer(result, f"The {module} module", call)


def module_call(call: Invocation) -> Any:
    """CRM and calendar tools: ``handler_config`` = {"module", "action"}."""
    config = call.tool.handler_config
    answer = module_request(
        call=call,
        module=str(config["module"]),
        action=str(config["action"]),
        payload=call.arguments,
        context={"X-Agentry-Agent": str(call.agent_id), "X-Agentry-Execution": str(call.execution.pk)},
        idempotency_key=call.idempotency_key,
    )
    if config["module"] == "crm":
        # A change to the CRM is an event other agents may react to (crm.contact.created …).
        crm_event_emit(call, str(config["action"]), answer)
    return answer


def sms_send(*, call: Invocation, to: str, message: str) -> Any:
    endpoint = _endpoint(call.organization_id, "sms")
    payload: dict[str, Any] = {"to": to, "message": message}
    if endpoint.config.get("from"):
        payload["from"] = endpoint.config["from"]
    return module_request(call=call, module="sms", action="", payload=payload)


def web_search(call: Invocation) -> dict[str, Any]:
    """The organization's search API (Serper-style ``{"q", "num"}``; results normalized)."""
    num = max(1, min(int(call.arguments.get("num_results") or 5), 20))
    answer = module_request(
        call=call,
        module="search",
        action="",
        payload={"q": call.arguments["query"], "num": num},
    )
    if not isinstance(answer, dict):
        raise ToolError("The search API did not answer with a JSON object.")
    raw = answer.get("organic") or answer.get("results") or answer.get("items") or []
    results = []
    for item in raw[:num] if isinstance(raw, list) else []:
        if isinstance(item, dict):
            results.append(
                {
                    "title": str(item.get("title", ""))[:300],
                    "url": str(item.get("link") or item.get("url") or ""),
                    "snippet": str(item.get("snippet") or item.get("description") or "")[:1000],
                }
            )
    return {"query": call.arguments["query"], "results": results, "untrusted_content": True}


def http_tool(call: Invocation) -> Any:
    """An organization's own HTTP tool: ``handler_config`` = {"url", "method", "headers"}.

    ``{name}`` in the URL takes that argument (URL-encoded); the other arguments go in the
    query string (GET, DELETE) or as the JSON body.
    """
    config = call.tool.handler_config
    method = str(config.get("method") or "POST").upper()
    arguments = dict(call.arguments)
    used: set[str] = set()

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in arguments:
            raise ToolError(f"The URL needs the argument {name!r}.")
        used.add(name)
        return quote(str(arguments[name]), safe="")

    url = _PLACEHOLDER.sub(fill, str(config["url"]))
    rest = {k: v for k, v in arguments.items() if k not in used}
    secrets = tool_secret_headers(tool_id=call.tool.tool_id)
    call.carry(*secrets.values())
    headers = {"Accept": "application/json", **(config.get("headers") or {}), **secrets}
    in_query = method in ("GET", "DELETE", "HEAD")
    result = fetch(
        method,
        url,
        params={k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()} if in_query and rest else None,
        json=None if in_query else rest,
        headers=headers,
        deadline=call.deadline,
        max_bytes=int(config.get("max_response_bytes") or MODULE_MAX_BYTES),
        follow_redirects=not secrets,
    )
    return _answer(result, call.tool.name, call)
