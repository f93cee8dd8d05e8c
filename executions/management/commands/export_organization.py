"""An organization's agents, their versions, executions and usage as one JSON document.

    python manage.py export_organization <slug> [--output file.json]

No secrets: fields named like keys, secrets, tokens or passwords are left out of every row
(a version's config may hold a connection id, never a key; keys live encrypted on provider
connections, which are not exported). Rows are read in chunks, so a large organization
does not load every execution at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.models import Organization
from agents.models import Agent, AgentVersion
from billing.models import UsageRecord
from executions.models import Execution

SECRET_FIELD = re.compile(r"(secret|password|api_key|_encrypted|token_hash|private)", re.IGNORECASE)
FORMAT_VERSION = 1


def _rows(qs: QuerySet) -> Iterator[dict[str, Any]]:
    model: type[Model] = qs.model
    names = [f.attname for f in model._meta.concrete_fields if not SECRET_FIELD.search(f.name)]
    yield from qs.order_by("pk").values(*names).iterator(chunk_size=1000)


class Command(BaseCommand):
    help = "Export an organization's agents, versions, executions and usage as JSON (no secrets)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--output", help="file to write; default: standard output")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["slug"]).first()
        if organization is None:
            raise CommandError(f"No organization {options['slug']!r}.")
        # Progress goes to stderr when the JSON itself goes to stdout.
        progress = self.stderr if not options["output"] else self.stdout
        sections = {
            "agents": Agent.objects.filter(organization=organization),
            "agent_versions": AgentVersion.objects.filter(agent__organization=organization),
            "executions": Execution.objects.filter(organization=organization),
            "usage_records": UsageRecord.objects.filter(organization=organization),
        }
        document: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "exported_at": timezone.now(),
            "organization": {"id": organization.pk, "slug": organization.slug, "name": organization.name},
        }
        for name, qs in sections.items():
            document[name] = list(_rows(qs))
            progress.write(f"{name}: {len(document[name])}")
        text = json.dumps(document, cls=DjangoJSONEncoder, indent=2)
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(self.style.SUCCESS(f"Wrote {options['output']}."))
        else:
            self.stdout.write(text)
