"""Run one agent from the terminal and print its steps as they happen.

    python manage.py run_agent <agent id, slug or name> "task" [--organization slug] [--context '{"k": 1}']

The run is executed in this process (no worker needed) and recorded like any other run,
with trigger_type manual.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.models import Q

from accounts.models import Organization
from agents.models import Agent
from config.api.errors import ApiError, error_text
from executions.models import Execution, ExecutionEvent, ExecutionLog
from executions.runtime.loop import run_execution
from executions.services import execution_start


def _run_and_close(execution_id) -> None:
    try:
        run_execution(execution_id)
    finally:
        connections.close_all()  # this thread's own connections: nothing is left open behind it


class Command(BaseCommand):
    help = "Run an agent in this process and print its steps as they happen."

    def add_arguments(self, parser) -> None:
        parser.add_argument("agent", help="the agent's id, slug or name")
        parser.add_argument("task")
        parser.add_argument("--organization", help="slug; defaults to the agent's organization")
        parser.add_argument("--context", default="{}", help="a JSON object")

    def handle(self, *args, **options) -> None:
        named = None
        if options["organization"]:
            named = Organization.objects.filter(slug=options["organization"]).first()
            if named is None:
                raise CommandError(f"No organization with the slug {options['organization']!r}.")
        agent = self._agent(options["agent"], named)
        organization = named or agent.organization
        if organization is None:
            raise CommandError("Name the organization to run this platform agent for (--organization).")
        try:
            context = json.loads(options["context"])
            execution, _ = execution_start(
                agent=agent, organization=organization, task=options["task"], context=context
            )
        except ApiError as exc:
            raise CommandError(error_text(exc)) from exc
        except ValueError as exc:
            raise CommandError(f"--context is not a JSON object: {exc}") from exc
        self.stdout.write(f"execution {execution.pk}")
        worker = threading.Thread(target=_run_and_close, args=(execution.pk,), daemon=True)
        worker.start()
        seen = warned = 0
        while True:
            for event in ExecutionEvent.objects.filter(execution=execution, seq__gt=seen).order_by("seq"):
                seen = event.seq
                self.stdout.write(self._line(event.event, event.data))
            # The run's warnings (tools not offered for a missing grant, ...) as they are logged.
            for log in ExecutionLog.objects.filter(execution=execution, level="warn", pk__gt=warned).order_by("pk"):
                warned = log.pk
                self.stdout.write(f"  warning: {log.message}")
            if not worker.is_alive():
                execution = Execution.objects.get(pk=execution.pk)
                if not ExecutionEvent.objects.filter(execution=execution, seq__gt=seen).exists() and not (
                    ExecutionLog.objects.filter(execution=execution, level="warn", pk__gt=warned).exists()
                ):
                    break
            time.sleep(0.1)
        self.stdout.write(
            f"{execution.status}: {execution.tokens_total} tokens, ${execution.cost}, {execution.duration_ms} ms"
        )
        if execution.status != "completed":
            raise CommandError(execution.error or execution.status)

    @staticmethod
    def _agent(reference: str, organization: Organization | None) -> Agent:
        """By id, else by slug, else by name (case-insensitive), among live agents of
        ``organization`` (and the platform's) when one is named."""
        agents = Agent.objects.filter(deleted_at__isnull=True)
        if organization is not None:
            agents = agents.filter(Q(organization=organization) | Q(organization__isnull=True))
        try:
            found = list(agents.filter(pk=uuid.UUID(reference)))
        except ValueError:
            found = list(agents.filter(slug=reference)) or list(agents.filter(name__iexact=reference))
        if not found:
            where = f" in {organization.slug}" if organization else ""
            raise CommandError(f"No agent with the id, slug or name {reference!r}{where}.")
        if len(found) > 1:
            places = ", ".join(sorted(a.organization.slug if a.organization else "platform" for a in found))
            raise CommandError(
                f"{len(found)} agents are called {reference!r} ({places}); name one with --organization or use its id."
            )
        return found[0]

    def _line(self, event: str, data: dict) -> str:
        if event == "think_completed":
            calls = ", ".join(c["name"] for c in data.get("tool_calls", []))
            said = (data.get("content") or "").strip().replace("\n", " ")[:200]
            return f"  think #{data['step_number']}: {said or '(no text)'}" + (f" -> calls {calls}" if calls else "")
        if event in ("act_completed", "act_failed"):
            return f"  act   #{data['step_number']}: {data['tool']} -> {json.dumps(data.get('output'))[:200]}"
        if event == "approval_requested":
            return f"  waiting for approval of {data['tool']}"
        return f"  {event}"
