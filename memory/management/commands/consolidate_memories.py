from __future__ import annotations

from django.core.management.base import BaseCommand

from memory.management.commands._common import agent_id, organization_id
from memory.services import memory_maintain


class Command(BaseCommand):
    help = (
        "Merge clusters of near-duplicate memories (cosine similarity > 0.95, same subject) of every agent "
        "holding at least MEMORY_MAINTENANCE_MIN_MEMORIES memories, and delete expired memories."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent", help="Only this agent (id).")
        parser.add_argument("--organization", help="Only this organization (slug or id).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be merged; change nothing.")

    def handle(self, *args, **options) -> None:
        result = memory_maintain(
            consolidate=True,
            prune=False,
            dry_run=options["dry_run"],
            agent_id=agent_id(options["agent"]),
            organization_id=organization_id(options["organization"]),
            progress=self.stdout.write,
        )
        verb = "would merge" if options["dry_run"] else "merged"
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.agents} agent(s): {verb} {result.clusters} cluster(s), {result.merged_away} memories folded in"
            )
        )
