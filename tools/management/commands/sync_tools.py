from django.core.management.base import BaseCommand

from tools.services import tools_sync


class Command(BaseCommand):
    help = "Create or update the built-in tools (safe to run at every deploy)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(tools_sync())
