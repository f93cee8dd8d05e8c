"""Delete ended runs older than N days, with their steps, logs and events (usage records stay).

python manage.py prune_executions --older-than-days 90 [--dry-run]
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from executions.maintenance import executions_prune


class Command(BaseCommand):
    help = "Delete ended executions older than N days (steps, logs, events with them; usage records kept)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True)
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options) -> None:
        days = options["older_than_days"]
        if days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        count = executions_prune(
            older_than=timedelta(days=days),
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            progress=self.stdout.write,
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} executions older than {days} days."))
