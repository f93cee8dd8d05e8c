"""Test connection, for a provider connection and an MCP server: one small real request
through the same path a run takes (the adapters' and the MCP client's SSRF guard), its
outcome said in plain words. Nothing is saved; a provider test is one completion of at most
one output token with the connection's default model (a fraction of a cent, billed by the
provider to the connection's key, not recorded as usage here)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from executions.llm.base import ChatMessage
from executions.llm.errors import LLMError, redact
from executions.llm.registry import get_client
from executions.providers import connection_config
from tools.mcp import client as mcp_client
from tools.mcp.client import McpError
from tools.mcp.selectors import endpoint_for

TEST_TIMEOUT_SECONDS = 15.0
MAX_LISTED = 200


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


def provider_connection_check(connection: Any) -> Check:
    model = connection.default_model or next(iter(connection.available_models or []), "")
    if not model:
        return Check(False, "Set a default model on this connection first: the test asks it one short question.")
    config = connection_config(
        provider=connection.provider, model=model, connection=connection, timeout=TEST_TIMEOUT_SECONDS, max_retries=0
    )
    started = time.perf_counter()
    try:
        response = get_client(config).complete(
            [ChatMessage(role="user", content="Reply with the single word: ok")], max_tokens=1, temperature=0
        )
    except LLMError as error:
        return Check(
            False,
            f"{connection.provider} / {model} did not answer: {redact(str(error), secrets=(connection.api_key,))}",
        )
    elapsed = int((time.perf_counter() - started) * 1000)
    return Check(
        True,
        f"{response.provider} / {response.model} answered in {elapsed} ms "
        f"({response.usage.input_tokens} input, {response.usage.output_tokens} output tokens).",
    )


def mcp_server_check(server: Any) -> Check:
    started = time.perf_counter()
    try:
        listing = mcp_client.list_tools(endpoint_for(server), timeout=TEST_TIMEOUT_SECONDS, max_tools=MAX_LISTED)
    except McpError as error:
        return Check(False, f"{server.name} did not answer: {error}")
    elapsed = int((time.perf_counter() - started) * 1000)
    names = ", ".join(tool.name for tool in listing.tools[:10]) + (" …" if len(listing.tools) > 10 else "")
    return Check(
        True,
        f"{server.name} answered in {elapsed} ms (MCP {listing.protocol_version or 'unknown version'}): "
        f"{len(listing.tools)} tool(s){': ' + names if names else ''}. Nothing was saved; use Sync to update the tools.",
    )
