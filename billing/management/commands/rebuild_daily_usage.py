from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts.models import Organization
from billing.usage import daily_usage_rebuild


class Command(BaseCommand):
    help = "Recompute the daily usage rollups from the usage records (all organizations, or one)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", help="slug")

    def handle(self, *args, **options) -> None:
        organization_id = None
        if options["organization"]:
            organization_id = Organization.objects.values_list("pk", flat=True).get(slug=options["organization"])
        rows = daily_usage_rebuild(organization_id=organization_id)
        self.stdout.write(f"rebuilt {rows} daily usage row(s)")
