"""Idempotent platform data sync run by `make run` and deployments.

Each app contributes a sync step through ``config.platform_sync.SYNC_STEPS``; this command
runs them in order and prints what each changed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from config.platform_sync import run_sync_steps


class Command(BaseCommand):
    help = "Sync built-in platform data (tools, model prices, templates, beat schedules)."

    def handle(self, *args, **options) -> None:
        for name, summary in run_sync_steps():
            if options.get("verbosity", 1) > 0:
                self.stdout.write(f"{name}: {summary}")
