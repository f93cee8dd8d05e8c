"""Writes for tenancy: organizations, memberships, API tokens, the activity log."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.models import ActivityLog, ApiToken, Membership, Organization, Scope
from billing.roles import Role
from billing.tokens import display_prefix, generate_token, hash_token
from config.api.errors import InvalidInput, NotFound
from config.logging import request_id_var

if TYPE_CHECKING:
    from billing.access import Actor

MAX_TOKEN_DAYS = 3650


def organization_create(*, name: str, slug: str | None = None) -> Organization:
    slug = slugify(slug or name)
    if not slug:
        raise InvalidInput(validation_errors={"slug": ["A slug needs letters or digits."]})
    if Organization.objects.filter(slug=slug).exists():
        raise InvalidInput(validation_errors={"slug": [f"An organization {slug!r} already exists."]})
    return Organization.objects.create(name=name or slug, slug=slug)


def user_get_or_create(*, email: str, password: str | None = None):
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first() or User.objects.filter(username=email).first()
    if user is None:
        user = User(username=email, email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def membership_set(*, organization: Organization, user, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidInput(validation_errors={"role": [f"Unknown role {role!r}; use one of {Role.values}."]})
    membership, _ = Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def organization_bootstrap(*, slug: str, name: str, owner_email: str, password: str | None) -> Organization:
    organization = organization_create(name=name, slug=slug)
    owner = user_get_or_create(email=owner_email, password=password)
    if password:
        owner.is_staff = True  # may log in to the admin; sees only its organizations there
        owner.save(update_fields=["is_staff"])
    membership_set(organization=organization, user=owner, role=Role.OWNER)
    return organization


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise InvalidInput(validation_errors={"scopes": [f"Unknown scopes {unknown}; known: {sorted(Scope.values)}."]})
    return sorted(set(scopes))


@transaction.atomic
def api_token_create(
    *,
    user,
    organization: Organization,
    name: str = "",
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    actor: Actor | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns (row, raw value). The raw value is never stored or shown again."""
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise NotFound("The user is not a member of this organization.")
    scopes = _validate_scopes(scopes if scopes is not None else list(Scope.values))
    if actor is not None and actor.token is not None and not actor.token.has_scope(Scope.ADMIN):
        # A token cannot mint a token with more power than itself.
        excess = sorted(set(scopes) - set(actor.token.scopes))
        if excess:
            raise InvalidInput(validation_errors={"scopes": [f"Your token does not hold {excess}."]})
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise InvalidInput(validation_errors={"expires_in_days": [f"Must be between 1 and {MAX_TOKEN_DAYS}."]})
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    raw = generate_token()
    token = ApiToken.objects.create(
        user=user,
        organization=organization,
        name=name,
        prefix=display_prefix(raw),
        token_hash=hash_token(raw),
        scopes=scopes,
        expires_at=expires_at,
    )
    activity_record(
        organization=organization,
        actor=actor,
        user=user,
        action="token.created",
        target=token,
        request_summary={"name": name, "scopes": scopes, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: Actor | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        activity_record(organization=token.organization, actor=actor, action="token.revoked", target=token)
    return token


def activity_record(
    *,
    organization: Organization,
    action: str,
    actor: Actor | None = None,
    user=None,
    target: Any = None,
    agent_id: Any = None,
    request_summary: dict | None = None,
    response_summary: dict | None = None,
    status: str = ActivityLog.Status.SUCCESS,
    duration_ms: int | None = None,
    tokens: int = 0,
    cost: Decimal | int = 0,
) -> ActivityLog:
    """Append one row to the organization's activity log (inside the caller's transaction)."""
    target_type = target._meta.label_lower if target is not None and hasattr(target, "_meta") else ""
    return ActivityLog.objects.create(
        organization=organization,
        user=(actor.user if actor else None) or user,  # type: ignore[misc]
        token=actor.token if actor else None,
        agent_id=agent_id,
        action=action,
        target_type=target_type,
        target_id=str(target.pk) if target is not None and hasattr(target, "pk") else "",
        request_summary=request_summary or {},
        response_summary=response_summary or {},
        status=status,
        duration_ms=duration_ms,
        tokens=tokens,
        cost=cost,
        request_id=request_id_var.get(),
    )


def activity_prune(*, older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = ActivityLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
