from django.core.management.base import BaseCommand

from approvals.services import approvals_expire


class Command(BaseCommand):
    help = "Expire pending approval requests past their time and cancel their runs."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"expired {approvals_expire(limit=100_000)} approval requests")
