"""Hand stuck runs back to the queue, or end the hopeless ones with ExecutionTimeout.

    python manage.py requeue_stuck_runs [--fail-after-minutes 60] [--dry-run]

Running with an expired lease, or pending and never claimed: re-queued. Past their deadline
(or created more than --fail-after-minutes ago): ended with ExecutionTimeout.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from executions.maintenance import executions_requeue_stuck


class Command(BaseCommand):
    help = "Re-queue runs whose worker died or whose message was lost; end those past their deadline."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fail-after-minutes", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")

    def handle(self, *args, **options) -> None:
        minutes = options["fail_after_minutes"]
        if minutes is not None and minutes < 1:
            raise CommandError("--fail-after-minutes must be at least 1.")
        report = executions_requeue_stuck(
            fail_after=timedelta(minutes=minutes) if minutes is not None else None,
            dry_run=options["dry_run"],
            progress=self.stdout.write,
        )
        prefix = "Would re-queue" if options["dry_run"] else "Re-queued"
        ended = "would end" if options["dry_run"] else "ended"
        self.stdout.write(
            self.style.SUCCESS(
                f"{prefix} {len(report.requeued)} runs; {ended} {len(report.ended)} with ExecutionTimeout."
            )
        )
