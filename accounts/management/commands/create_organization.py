from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.services import organization_bootstrap
from config.api.errors import ApiError


class Command(BaseCommand):
    help = "Create an organization with an owner. The last line printed is the organization id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--owner", required=True, help="the owner's email (created if new)")
        parser.add_argument("--password", default=None, help="sets the owner's password (admin login)")

    def handle(self, *args, slug: str, name: str, owner: str, password: str | None, **options) -> None:
        try:
            organization = organization_bootstrap(slug=slug, name=name or slug, owner_email=owner, password=password)
        except ApiError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from exc
        self.stdout.write(f"Created organization {organization.name!r} ({organization.slug}) owned by {owner}")
        self.stdout.write(str(organization.id))
