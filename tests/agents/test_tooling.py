"""The hook through which the agents app learns which tools exist."""

from __future__ import annotations

import sys

from agents import tooling


def test_reference_names_stand_in_without_a_registry(org, monkeypatch):
    monkeypatch.setitem(sys.modules, "tools.selectors", None)  # import fails as if absent
    names = tooling.available_tool_names(organization=org)
    assert names == list(tooling.REFERENCE_TOOL_NAMES)


def test_the_registry_is_asked_when_it_exists(org, monkeypatch):
    import types

    fake = types.ModuleType("tools.selectors")
    seen = []

    def tool_names_available(*, organization):
        seen.append(organization)
        return ["acme_lookup"]

    fake.tool_names_available = tool_names_available  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tools.selectors", fake)
    assert tooling.available_tool_names(organization=org) == ["acme_lookup"]
    assert seen == [org]
