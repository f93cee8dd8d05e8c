from __future__ import annotations

from django.core.management.base import BaseCommand

from memory.services import conversations_expire


class Command(BaseCommand):
    help = "Delete conversations past their expiry (MEMORY_CONVERSATION_TTL_HOURS after their last message)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count them; delete nothing.")

    def handle(self, *args, **options) -> None:
        count = conversations_expire(dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} expired conversation(s)"))
