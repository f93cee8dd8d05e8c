from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from accounts.services import organization_bootstrap
from config.api.errors import ApiError, error_text


class Command(BaseCommand):
    help = "Create an organization with an owner. The last line printed is the organization id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--owner", required=True, help="the owner's email (created if new)")
        parser.add_argument("--password", default=None, help="sets the owner's password (admin login)")

    def handle(self, *args, slug: str, name: str, owner: str, password: str | None, **options) -> None:
        existing = Organization.objects.filter(slug=slug).first()
        if existing is not None:
            # Not idempotent on purpose: an existing organization is neither changed nor given a
            # new owner here; say so plainly (bootstrap is the command that may run again).
            raise CommandError(
                f"An organization with the slug {slug!r} already exists ({existing.name!r}, id {existing.pk}); "
                "nothing was changed. Pick another slug, or manage its members in the console."
            )
        try:
            organization = organization_bootstrap(slug=slug, name=name or slug, owner_email=owner, password=password)
        except ApiError as exc:
            raise CommandError(error_text(exc)) from exc
        self.stdout.write(f"Created organization {organization.name!r} ({organization.slug}) owned by {owner}")
        self.stdout.write(str(organization.id))
