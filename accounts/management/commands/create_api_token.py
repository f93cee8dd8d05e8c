from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from accounts.services import api_token_create
from config.api.errors import ApiError, error_text


class Command(BaseCommand):
    help = "Create an API token for a member of an organization. The last line printed is the token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="the user's email or username")
        parser.add_argument("--organization", required=True, help="the organization's slug")
        parser.add_argument("--scopes", default="", help="comma-separated; all scopes when omitted")
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        user = (
            User.objects.filter(email__iexact=options["user"]).first()
            or User.objects.filter(username=options["user"]).first()
        )
        if user is None:
            raise CommandError(f"No user {options['user']!r}")
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"No organization {options['organization']!r}")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()] or None
        try:
            token, raw = api_token_create(
                user=user,
                organization=organization,
                name=options["name"],
                scopes=scopes,
                expires_in_days=options["expires_days"],
            )
        except ApiError as exc:
            raise CommandError(error_text(exc)) from exc
        self.stdout.write(f"Token {token.prefix}… for {user} in {organization.slug}, scopes {','.join(token.scopes)}")
        self.stdout.write(raw)
