from __future__ import annotations

import factory

from agents.models import Agent, AgentTemplate
from tests.factories import OrganizationFactory


class AgentFactory(factory.django.DjangoModelFactory):
    """A draft agent row written directly (no service): for selectors, lists and query counts."""

    class Meta:
        model = Agent

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.Sequence(lambda n: f"agent-{n}")
    description = "An agent for tests."
    system_prompt = "You help with tests."


class AgentTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentTemplate
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"template-{n}")
    name = factory.Sequence(lambda n: f"Template {n}")
    agent_type = "assistant"
    config = factory.LazyFunction(lambda: {"system_prompt": "Be useful."})
