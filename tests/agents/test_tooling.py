"""The hook through which the agents app learns about tools (the tools app registers it)."""

from __future__ import annotations

from agents import tooling
from tools.selectors import agent_tool_gaps, tool_names_available


def test_the_tools_app_registers_its_selectors():
    assert tooling._catalog is not None
    assert tooling._catalog.tool_names is tool_names_available
    assert tooling._catalog.tool_gaps is agent_tool_gaps


def test_reference_names_stand_in_without_a_catalog(org, monkeypatch):
    monkeypatch.setattr(tooling, "_catalog", None)
    names = tooling.available_tool_names(organization=org)
    assert names == list(tooling.REFERENCE_TOOL_NAMES)


def test_the_registered_catalog_is_asked(org, monkeypatch):
    seen = []

    def tool_names(*, organization):
        seen.append(organization)
        return ["acme_lookup"]

    monkeypatch.setattr(tooling, "_catalog", None)
    tooling.tools_catalog_set(
        tooling.ToolsCatalog(
            tool_names=tool_names,
            tool_gaps=lambda **kw: [],
            agent_capabilities=lambda **kw: [],
            capability_names=frozenset(),
        )
    )
    assert tooling.available_tool_names(organization=org) == ["acme_lookup"]
    assert seen == [org]
