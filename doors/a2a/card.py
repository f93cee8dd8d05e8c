"""An agent's A2A Agent Card: who it is, what it can do (skills from its description and its
tools), where its JSON-RPC endpoint is, and that a bearer token (an Agentry API token) opens it."""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2 as pb
from a2a.utils import constants
from google.protobuf.json_format import MessageToDict

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import agent_run_config
from agents.validation import tool_is_allowed
from tools.selectors import tool_catalog

BEARER = "agentryBearer"
MAX_TOOL_SKILLS = 50


def a2a_url(base_url: str, agent: Agent) -> str:
    return f"{base_url.rstrip('/')}/a2a/{agent.pk}/"


def agent_card(*, actor: Actor, agent: Agent, base_url: str) -> pb.AgentCard:
    version, config, _ = agent_run_config(agent=agent, organization=actor.organization)
    description = agent.description or f"The Agentry agent {agent.name}."
    skills = [
        pb.AgentSkill(
            id=agent.slug,
            name=agent.name,
            description=description,
            tags=[t for t in [config.get("domain"), *(config.get("capabilities") or [])] if t] or ["agent"],
            input_modes=["text/plain"],
            output_modes=["text/plain", "application/json"],
        )
    ]
    allowed, denied = list(config.get("allowed_tools") or []), list(config.get("denied_tools") or [])
    catalog = tool_catalog(organization_id=actor.organization.pk)
    usable = [t for name, t in sorted(catalog.items()) if tool_is_allowed(name, allowed=allowed, denied=denied)]
    for tool in usable[:MAX_TOOL_SKILLS]:
        skills.append(
            pb.AgentSkill(
                id=f"tool:{tool.name}",
                name=tool.name,
                description=tool.description or f"Uses the tool {tool.name}.",
                tags=["tool", *(["approval"] if tool.is_dangerous else [])],
            )
        )
    return pb.AgentCard(
        name=agent.name,
        description=description,
        version=version.version,
        supported_interfaces=[
            pb.AgentInterface(
                url=a2a_url(base_url, agent),
                protocol_binding=constants.TransportProtocol.JSONRPC.value,
                protocol_version=constants.PROTOCOL_VERSION_1_0,
            )
        ],
        provider=pb.AgentProvider(organization="Agentry", url=base_url.rstrip("/") + "/"),
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=False),
        security_schemes={
            BEARER: pb.SecurityScheme(
                http_auth_security_scheme=pb.HTTPAuthSecurityScheme(
                    scheme="bearer",
                    bearer_format="agt_…",
                    description="An Agentry API token (scopes agents:execute to send, agents:read to read tasks).",
                )
            )
        },
        security_requirements=[pb.SecurityRequirement(schemes={BEARER: pb.StringList(list=[])})],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/json"],
        skills=skills,
        icon_url=agent.avatar_url,
    )


def card_json(card: pb.AgentCard) -> dict[str, Any]:
    return MessageToDict(card, preserving_proto_field_name=False)
