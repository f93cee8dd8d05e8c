"""One real, 1-token call through every active provider connection, with its latency.

    python manage.py check_provider_connections [--organization slug] [--timeout 15]

Exits non-zero when any connection fails, so it can run from a deploy check or cron.
Keys are never printed: a connection is named by id, name and the key's last 4 characters.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from agents.models import ProviderConnection
from executions.llm.registry import get_client
from executions.providers import connection_config


class Command(BaseCommand):
    help = "Call every active provider connection once (1 token) and show latency or the error."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", help="only this organization's connections (slug)")
        parser.add_argument("--timeout", type=float, default=15.0, help="seconds per call")

    def handle(self, *args, **options) -> None:
        connections = ProviderConnection.objects.filter(is_active=True).select_related("organization")
        if options["organization"]:
            connections = connections.filter(organization__slug=options["organization"])
        failed = checked = 0
        for connection in connections.order_by("organization__slug", "provider", "name"):
            owner = connection.organization.slug if connection.organization else "platform"
            label = (
                f"{owner}/{connection.provider} {connection.name or connection.pk} (key …{connection.key_last4 or '-'})"
            )
            model = connection.default_model or next(iter(connection.available_models or []), "")
            if not model:
                self.stdout.write(self.style.WARNING(f"SKIP {label}: no default or available model to call"))
                continue
            # The same endpoint, key and SSRF guard a run would use.
            config = connection_config(
                provider=connection.provider,
                model=model,
                connection=connection,
                timeout=options["timeout"],
                # One attempt: a check that retries hides the flakiness it is meant to show.
                max_retries=0,
            )
            checked += 1
            started = time.perf_counter()
            try:
                get_client(config).complete([{"role": "user", "content": "ping"}], max_tokens=1)
            except Exception as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"FAIL {label} {model}: {type(exc).__name__}: {exc}"))
                continue
            latency_ms = (time.perf_counter() - started) * 1000
            self.stdout.write(self.style.SUCCESS(f"OK   {label} {model}: {latency_ms:.0f} ms"))
        if failed:
            raise CommandError(f"{failed} of {checked} provider connections failed.")
        self.stdout.write(f"{checked} provider connections answered.")
