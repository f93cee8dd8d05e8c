"""A small, hand-kept, typed client for the Agentry REST API (``/api/v1/``, API.md).

    from agentry_client import AgentryClient
    client = AgentryClient("http://127.0.0.1:8000", token="agt_...")
    agent = client.create_agent({"name": "Helper", "system_prompt": "Be brief."})
    client.publish_agent(agent["id"])
    run = client.execute_agent(agent["id"], "Say hello")
    for event in client.stream_events(run["id"]):
        print(event.id, event.event, event.data)

Only ``httpx`` is needed. Every API error raises ``AgentryError`` with the error shape's code,
message, details and request id, so callers branch on ``code`` and quote ``request_id``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal, TypedDict

import httpx

from agentry_client.sse import TERMINAL_EVENTS, Event, EventParser

__all__ = ["TERMINAL_EVENTS", "AgentryClient", "AgentryError", "Approval", "Event", "Execution", "Page"]
__version__ = "0.1.0"

ExecutionStatus = Literal[
    "pending", "running", "waiting", "waiting_approval", "completed", "failed", "cancelled", "timed_out"
]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})
ApprovalStatus = Literal["pending", "approved", "denied", "expired", "cancelled"]
RiskLevel = Literal["low", "medium", "high", "critical"]
# Answers worth retrying when a stream connects: a proxy or the server restarting.
_TRANSIENT_STATUSES = frozenset({502, 503, 504})


class Page(TypedDict):
    results: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class Execution(TypedDict, total=False):
    id: str
    agent_id: str
    agent_version: str | None  # None on a draft run
    draft: bool  # a run of the agent's unpublished draft
    status: ExecutionStatus
    trigger_type: str
    input: dict[str, Any]
    output: Any
    result_text: str
    error: str
    error_code: str
    tokens_input: int
    tokens_output: int
    tokens_total: int
    llm_calls: int
    sandbox_calls: int  # answers of the offline sandbox provider, not LLM calls
    tool_calls: int
    cost: str  # a decimal string in USD
    duration_ms: int | None
    started_at: str | None
    completed_at: str | None
    created_at: str


class Approval(TypedDict, total=False):
    id: str
    action_type: str  # the tool's name
    action_description: str
    action_params: dict[str, Any]
    original_params: dict[str, Any]
    params_edited: bool
    risk_level: RiskLevel
    risk_explanation: str
    status: ApprovalStatus
    execution: str
    step_number: int
    agent: str
    agent_name: str
    expires_at: str
    resolved_by: dict[str, Any] | None
    resolved_at: str | None
    resolution_note: str
    created_at: str


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
        self._timeout = timeout
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
            raise _error_of(response)
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
        draft: bool = False,
    ) -> Execution:
        body: dict[str, Any] = {"task": task, "context": context or {}}
        if draft:  # the unpublished draft (needs the right to edit the agent)
            body["draft"] = True
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

    def stream_events(
        self,
        execution_id: str,
        *,
        last_event_id: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
    ) -> Iterator[Event]:
        """The run's events as they happen (``GET executions/{id}/stream/``), ending after its
        terminal event (``execution_completed`` or ``execution_failed``).

        Persisted events are replayed first, so a run that already finished yields its whole
        history. ``last_event_id`` resumes after that event. A connection that drops, or goes
        silent for ``timeout`` seconds (the server sends a keep-alive every 15 s), is opened
        again with ``Last-Event-ID``: no event is lost or repeated, except live-only ones
        (``think_token``) sent while disconnected. After ``max_retries`` failed reconnections
        in a row the last error is raised. Breaking out of the loop closes the connection.
        """
        last = last_event_id
        failures = 0
        delay = 1.0
        over = False  # the run was seen finished after a stream ended without its last event
        while True:
            # JSON too: errors come as the API's error shape (and the API's content
            # negotiation knows no text/event-stream renderer).
            headers = {"Accept": "text/event-stream, application/json"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            received = False
            try:
                with self._http.stream(
                    "GET",
                    f"executions/{execution_id}/stream/",
                    headers=headers,
                    timeout=httpx.Timeout(self._timeout, read=timeout),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        if response.status_code not in _TRANSIENT_STATUSES:
                            raise _error_of(response)
                        raise _Transient(_error_of(response))
                    parser = EventParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if parser.retry_ms is not None:
                            delay = parser.retry_ms / 1000
                        if event is None:
                            continue
                        received = True
                        if event.id is not None:
                            last = event.id
                        yield event
                        if event.is_terminal:
                            return
                # The server ended the stream before the run's last event. It does so when
                # it sees the run over, which may happen between its reading the stored
                # events and the run's last ones being committed: ask once more for what
                # came after ``last``, then stop. Otherwise (its hour is up) read on.
                if over:
                    return
                over = self.get_execution(execution_id).get("status") in TERMINAL
                if over:
                    continue
                failures = 0 if received else failures + 1
                if failures > max_retries:
                    raise AgentryError(0, "StreamEnded", "The stream kept ending without events.", {}, "")
            except (httpx.TransportError, _Transient) as exc:
                failures = 0 if received else failures + 1
                if failures > max_retries:
                    raise (exc.error if isinstance(exc, _Transient) else exc) from None
            time.sleep(min(delay * 2 ** max(failures - 1, 0), 30.0))

    # -- approvals and usage -------------------------------------------------------------
    def list_approvals(
        self,
        *,
        status: ApprovalStatus | Literal["all"] | None = None,
        execution_id: str | None = None,
        agent_id: str | None = None,
        risk_level: RiskLevel | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Page:
        """Approval requests, newest first; the server lists only pending ones unless
        ``status`` says otherwise (``"all"`` for every status)."""
        params = {
            "status": status,
            "execution": execution_id,
            "agent": agent_id,
            "risk_level": risk_level,
            "limit": limit,
            "offset": offset,
        }
        return self._request("GET", "approvals/", params={k: v for k, v in params.items() if v is not None})

    def get_approval(self, approval_id: str) -> Approval:
        return self._request("GET", f"approvals/{approval_id}/")

    def approve(self, approval_id: str, *, note: str = "", params: dict[str, Any] | None = None) -> Approval:
        """Let the held tool call run; ``params`` replaces its arguments (checked against the
        tool's schema by the server)."""
        body: dict[str, Any] = {"note": note}
        if params is not None:
            body["params"] = params
        return self._request("POST", f"approvals/{approval_id}/approve/", json=body)

    def deny(self, approval_id: str, *, note: str = "") -> Approval:
        """Refuse the held tool call; the run ends as cancelled."""
        return self._request("POST", f"approvals/{approval_id}/deny/", json={"note": note})

    def usage(self, **params: Any) -> dict[str, Any]:
        return self._request("GET", "usage/", params=params)

    def health(self) -> dict[str, Any]:
        return self._request("GET", "health/")


class _Transient(Exception):
    def __init__(self, error: AgentryError):
        super().__init__(str(error))
        self.error = error


def _error_of(response: httpx.Response) -> AgentryError:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "HttpError", "message": response.text[:200], "details": {}, "request_id": ""}
    return AgentryError(
        response.status_code,
        error.get("code", ""),
        error.get("message", ""),
        error.get("details") or {},
        error.get("request_id") or response.headers.get("X-Request-ID", ""),
    )
