"""First run: an organization, an owner who can log in to the admin, an API token, and demo
agents (one per template; on the sandbox provider unless a provider key is configured)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.access import Actor
from accounts.models import Membership, Organization
from accounts.services import api_token_create, organization_bootstrap
from agents.models import AgentTemplate
from agents.services.demo import demo_agents_create, demo_model_config


class Command(BaseCommand):
    help = "Create the first organization, owner and API token when the database has none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument("--slug", default="default")

    def handle(self, *args, email: str, slug: str, **options) -> None:
        if Organization.objects.exists():
            self.stdout.write("Agentry is set up already (log in with the credentials printed on the first run).")
            return
        password = secrets.token_urlsafe(12)
        organization = organization_bootstrap(
            slug=slug, name="Default organization", owner_email=email, password=password
        )
        owner = get_user_model().objects.get(username=email)
        # The first person is also the platform superuser, who manages every organization.
        owner.is_superuser = True
        owner.is_staff = True
        owner.save(update_fields=["is_superuser", "is_staff"])
        _, raw = api_token_create(user=owner, organization=organization, name="first-run")
        agents_lines = self._demo_agents(organization, owner, raw)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "=== Agentry first run ===",
                    f"Admin:     http://127.0.0.1:{settings.PORT}/admin/   user {email}   password {password}",
                    f"API token: {raw}",
                    f"Try:       curl -H 'Authorization: Bearer <token>' http://127.0.0.1:{settings.PORT}/api/v1/health/",
                    *agents_lines,
                    "These are shown once; keep them.",
                    "",
                ]
            )
        )

    def _demo_agents(self, organization: Organization, owner, raw_token: str) -> list[str]:
        if not AgentTemplate.objects.exists():
            return ["Demo agents: none (no templates; run `manage.py sync_platform` first)."]
        membership = Membership.objects.get(organization=organization, user=owner)
        agents = demo_agents_create(actor=Actor(organization=organization, user=owner, membership=membership))
        config = demo_model_config()
        lines = [f"Demo agents ({config['provider']}/{config['model']}):"]
        lines += [f"  {agent.pk}  {agent.name}" for agent in agents]
        if agents:
            lines.append(
                f"Run one:   curl -X POST -H 'Authorization: Bearer {raw_token}' -H 'Content-Type: application/json' "
                f'-d \'{{"task": "Say hello", "wait": 10}}\' http://127.0.0.1:{settings.PORT}/api/v1/agents/{agents[0].pk}/execute/'
            )
        return lines
