"""Fixtures for tool and approval tests (imported by tests/tools and tests/approvals conftests).

- ``synced_tools``: the built-in registry, as ``manage.py sync_tools`` writes it.
- ``http_fake``: one local fake HTTP server per session, reset per test, and allow-listed for
  the SSRF guard (only its own port: every other local address stays refused).
- ``mcp_fake``: the MCP server of ``tests/fakes/mcp_server.py`` (official SDK, streamable
  HTTP on 127.0.0.1), reset per test and allow-listed for the SSRF guard.
- ``tool_env``: an agent of ``org`` with a run to call tools in, and helpers to grant
  capabilities, configure modules and call a tool through the gateway as the runtime would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from executions.runtime.tools_port import ToolContext, ToolOutcome
from tests.fakes.http_fakes import Canary, FakeHttpServer
from tests.fakes.mcp_server import FakeMcpServer


@pytest.fixture
def synced_tools(db) -> str:
    from tools.services import tools_sync

    return tools_sync()


@pytest.fixture(scope="session")
def http_fake_server() -> Iterator[FakeHttpServer]:
    server = FakeHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def http_fake(http_fake_server: FakeHttpServer, settings) -> Iterator[FakeHttpServer]:
    http_fake_server.reset()
    settings.AGENTRY_SSRF_ALLOW = [http_fake_server.allow_entry]
    yield http_fake_server
    http_fake_server.reset()


@pytest.fixture(scope="session")
def mcp_fake_server() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mcp_fake(mcp_fake_server: FakeMcpServer, settings) -> Iterator[FakeMcpServer]:
    """The SDK-built MCP server, reset, and allow-listed for the SSRF guard (its port only)."""
    from tools.mcp.client import mcp_pool

    mcp_fake_server.reset()
    settings.AGENTRY_SSRF_ALLOW = [mcp_fake_server.allow_entry]
    yield mcp_fake_server
    mcp_fake_server.reset()
    mcp_pool().close_all()  # the next test's server rows are new: no session carries over


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.stop()


_steps = itertools.count(10_000)


@dataclass
class ToolEnv:
    org: Any
    agent: Any
    execution: Any
    port: Any
    config: dict[str, Any] = field(default_factory=dict)

    def context(self, step_number: int | None = None) -> ToolContext:
        number = step_number if step_number is not None else next(_steps)
        return ToolContext(
            execution=self.execution,
            config=self.config,
            step_number=number,
            idempotency_key=f"{self.execution.pk}:{number}",
        )

    def grant(self, *capabilities: str) -> None:
        from tools.models import AgentCapabilityGrant

        AgentCapabilityGrant.objects.update_or_create(
            organization=self.org, agent=self.agent, defaults={"capabilities": list(capabilities)}
        )
        self.refresh()

    def module(self, module: str, base_url: str, secret: str = "", **config: Any) -> Any:
        from tools.models import ModuleEndpoint

        endpoint, _ = ModuleEndpoint.objects.update_or_create(
            organization=self.org,
            module=module,
            defaults={"base_url": base_url, "secret": secret, "config": config, "is_active": True},
        )
        self.refresh()
        return endpoint

    def refresh(self) -> None:
        # The gateway keeps what a run may use for a few seconds; a test changes it at once.
        self.execution.__dict__.pop("_agentry_tool_view", None)

    def call(self, name: str, arguments: dict[str, Any], step_number: int | None = None) -> ToolOutcome:
        """check, then run when allowed: what the runtime does with one tool call."""
        context = self.context(step_number)
        decided = self.port.check(context=context, name=name, arguments=arguments)
        if decided is not None:
            return decided
        return self.port.run(context=context, name=name, arguments=arguments)


@pytest.fixture
def tool_env(org, alice, make_agent, synced_tools) -> ToolEnv:
    from executions.services import execution_start
    from tools.gateway import DatabaseToolPort

    agent = make_agent(name="Tool user", allowed_tools=["*"])
    execution, _ = execution_start(agent=agent, organization=org, task="Use tools")
    return ToolEnv(org=org, agent=agent, execution=execution, port=DatabaseToolPort(), config=dict(execution.config))
