from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from memory.management.commands._common import agent_id, organization_id
from memory.services import memory_maintain


class Command(BaseCommand):
    help = (
        "Delete memories with importance below MEMORY_PRUNE_BELOW_IMPORTANCE, accessed fewer than "
        "MEMORY_PRUNE_BELOW_ACCESS_COUNT times and older than MEMORY_PRUNE_OLDER_THAN_DAYS days, of agents holding "
        "at least MEMORY_MAINTENANCE_MIN_MEMORIES memories; and expired memories."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent", help="Only this agent (id).")
        parser.add_argument("--organization", help="Only this organization (slug or id).")
        parser.add_argument("--consolidate", action="store_true", help="Merge near-duplicates first.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, **options) -> None:
        self.stdout.write(
            f"rules: importance < {settings.MEMORY_PRUNE_BELOW_IMPORTANCE}, accessed < "
            f"{settings.MEMORY_PRUNE_BELOW_ACCESS_COUNT} times, older than {settings.MEMORY_PRUNE_OLDER_THAN_DAYS} days, "
            f"agents with >= {settings.MEMORY_MAINTENANCE_MIN_MEMORIES} memories"
        )
        result = memory_maintain(
            consolidate=options["consolidate"],
            prune=True,
            dry_run=options["dry_run"],
            agent_id=agent_id(options["agent"]),
            organization_id=organization_id(options["organization"]),
            progress=self.stdout.write,
        )
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.agents} agent(s): {verb} {result.pruned} pruned and {result.expired} expired memories"
            )
        )
