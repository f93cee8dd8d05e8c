"""A small, hand-kept, typed client for the Agentry REST API (/work/shared/API.md).

    from agentry_client import AgentryClient
    client = AgentryClient("http://127.0.0.1:8000", token="agt_...")
    agent = client.create_agent({"name": "Helper", "system_prompt": "Be brief."})
    client.publish_agent(agent["id"])
    run = client.execute_agent(agent["id"], "Say hello", wait=10)

Only ``httpx`` is needed. Every API error raises ``AgentryError`` with the error shape's code,
message, details and request id, so callers branch on ``code`` and quote ``request_id``.
"""

from __future__ import annotations

import time
from typing import Any, Literal, TypedDict

import httpx

__all__ = ["AgentryClient", "AgentryError", "Execution", "Page"]

ExecutionStatus = Literal[
    "pending", "running", "waiting", "waiting_approval", "completed", "failed", "cancelled", "timed_out"
]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})


class Page(TypedDict):
    results: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class Execution(TypedDict, total=False):
    id: str
    agent_id: str
    status: ExecutionStatus
    input: dict[str, Any]
    output: Any
    error: str
    tokens_total: int
    cost: str  # a decimal string in USD
    duration_ms: int | None


class AgentryError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any], request_id: str):
        super().__init__(f"{status} {code}: {message} (request {request_id})")
        self.status, self.code, self.message, self.details, self.request_id = (
            status, code, message, details, request_id,
        )  # fmt: skip


class AgentryClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "HttpError", "message": response.text[:200], "details": {}, "request_id": ""}
            raise AgentryError(
                response.status_code,
                error.get("code", ""),
                error.get("message", ""),
                error.get("details") or {},
                error.get("request_id") or response.headers.get("X-Request-ID", ""),
            )
        return response.json() if response.content else None

    # -- agents -----------------------------------------------------------------------
    def list_agents(self, **filters: Any) -> Page:
        return self._request("GET", "agents/", params=filters)

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self._request("GET", f"agents/{agent_id}/")

    def create_agent(self, data: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "agents/", json=data)

    def publish_agent(self, agent_id: str, *, version: str | None = None, changelog: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"changelog": changelog}
        if version:
            body["version"] = version
        return self._request("POST", f"agents/{agent_id}/publish/", json=body)

    def execute_agent(
        self,
        agent_id: str,
        task: str,
        *,
        context: dict[str, Any] | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        body: dict[str, Any] = {"task": task, "context": context or {}}
        if wait is not None:
            body["wait"] = wait
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._request("POST", f"agents/{agent_id}/execute/", json=body, headers=headers)

    # -- executions -------------------------------------------------------------------
    def get_execution(self, execution_id: str) -> Execution:
        return self._request("GET", f"executions/{execution_id}/")

    def list_steps(self, execution_id: str) -> Page:
        return self._request("GET", f"executions/{execution_id}/steps/")

    def cancel_execution(self, execution_id: str) -> Execution:
        return self._request("POST", f"executions/{execution_id}/cancel/")

    def wait_for_execution(self, execution_id: str, *, timeout: float = 120.0, interval: float = 1.0) -> Execution:
        """Poll until the run ends (or ``timeout`` passes: returns the last state seen)."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_execution(execution_id)
            if execution.get("status") in TERMINAL or time.monotonic() >= deadline:
                return execution
            time.sleep(interval)

    # -- approvals and usage -------------------------------------------------------------
    def list_approvals(self, **filters: Any) -> Page:
        return self._request("GET", "approvals/", params=filters)

    def approve(self, approval_id: str, *, note: str = "", params: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"note": note}
        if params is not None:
            body["params"] = params
        return self._request("POST", f"approvals/{approval_id}/approve/", json=body)

    def deny(self, approval_id: str, *, note: str = "") -> dict[str, Any]:
        return self._request("POST", f"approvals/{approval_id}/deny/", json={"note": note})

    def usage(self, **params: Any) -> dict[str, Any]:
        return self._request("GET", "usage/", params=params)

    def health(self) -> dict[str, Any]:
        return self._request("GET", "health/")
