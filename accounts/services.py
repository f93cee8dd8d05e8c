"""Writes for tenancy: organizations, memberships, API tokens, the activity log.

Every write takes the ``actor`` it acts for (None: the platform, i.e. a superuser in the
admin, a command or the system; then ``by_user`` names the person for the log)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.agent_lookup import agent_visible
from accounts.models import ActivityLog, ApiToken, Membership, Organization, Scope
from accounts.roles import Role
from accounts.tokens import display_prefix, generate_token, hash_token
from config.api.errors import ApiError, Conflict, InsufficientPermissions, InvalidInput, NotFound
from config.logging import request_id_var
from config.redact_data import bounded_redacted

if TYPE_CHECKING:
    from accounts.access import Actor

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
    """Create a token; returns (row, raw value). The raw value is never stored or shown again.

    A token minting a token becomes its parent: the child holds no scope the parent lacks,
    expires no later than it (by default exactly when it does), and is revoked with it.
    """
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise NotFound("The user is not a member of this organization.")
    scopes = _validate_scopes(scopes if scopes is not None else list(Scope.values))
    parent = None
    if actor is not None and actor.token is not None:
        # Locked, so a revocation of the parent either sees this child or is seen here.
        parent = ApiToken.objects.select_for_update().get(pk=actor.token.pk)
        if parent.is_revoked or parent.is_expired:
            raise ApiError(code="TokenRevoked" if parent.is_revoked else "TokenExpired")
    if parent is not None and not parent.has_scope(Scope.ADMIN):
        # A token cannot mint a token with more power than itself.
        excess = sorted(set(scopes) - set(parent.scopes))
        if excess:
            raise InvalidInput(validation_errors={"scopes": [f"Your token does not hold {excess}."]})
    now = timezone.now()
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise InvalidInput(validation_errors={"expires_in_days": [f"Must be between 1 and {MAX_TOKEN_DAYS}."]})
        expires_at = now + timedelta(days=expires_in_days)
    if parent is not None and parent.expires_at is not None:
        if expires_at is None:
            expires_at = parent.expires_at
        elif expires_at > parent.expires_at:
            # Refused rather than capped: a caller asking for 90 days should not silently get 1.
            days_left = (parent.expires_at - now).days
            raise InvalidInput(
                f"A token cannot outlive the token that mints it, which expires at {parent.expires_at.isoformat()}.",
                validation_errors={
                    "expires_in_days": [
                        f"At most {days_left} for the token you are using."
                        if days_left >= 1
                        else "Leave it out: the new token then expires with the one you are using."
                    ]
                },
                details={"parent_expires_at": parent.expires_at.isoformat()},
            )
    raw = generate_token()
    token = ApiToken.objects.create(
        user=user,
        organization=organization,
        name=name,
        prefix=display_prefix(raw),
        token_hash=hash_token(raw),
        scopes=scopes,
        expires_at=expires_at,
        parent=parent,
    )
    activity_record(
        organization=organization,
        actor=actor,
        user=user,
        action="token.created",
        target=token,
        request_summary={
            "name": name,
            "scopes": scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "parent": parent.prefix if parent else None,
        },
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Actor | None = None, by_user=None) -> ApiToken:
    """Revoke the token and every token it minted, their children included. Idempotent."""
    _check_may_manage_token(actor, token)
    now = timezone.now()
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        locked.revoked_at = now
        locked.save(update_fields=["revoked_at"])
        activity_record(
            organization=locked.organization, actor=actor, user=by_user, action="token.revoked", target=locked
        )
    for child in _descendants(locked):
        if child.revoked_at is None:
            child.revoked_at = now
            child.save(update_fields=["revoked_at"])
            activity_record(
                organization=child.organization,
                actor=actor,
                user=by_user,
                action="token.revoked",
                target=child,
                request_summary={"with_parent": str(child.parent_id)},
            )
    token.revoked_at = locked.revoked_at
    return locked


def _descendants(token: ApiToken) -> Iterator[ApiToken]:
    """Every token ``token`` minted, their children included, locked, level by level. With
    the parent's row lock held, a child minted concurrently either committed before (and is
    found here) or waits for this transaction and then sees its parent's new state."""
    seen, frontier = {token.pk}, [token.pk]
    while frontier:
        children = list(ApiToken.objects.select_for_update().filter(parent_id__in=frontier).exclude(pk__in=seen))
        yield from children
        seen.update(child.pk for child in children)
        frontier = [child.pk for child in children]


_UNSET: Any = object()


@transaction.atomic
def api_token_update(
    *, token: ApiToken, actor: Actor | None = None, by_user=None, name: Any = _UNSET, expires_at: Any = _UNSET
) -> ApiToken:
    """Rename a token or bring its expiry forward; a revoked token no longer changes and an
    expiry is never pushed back (revoke and mint a new token instead)."""
    _check_may_manage_token(actor, token)
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.is_revoked:
        raise Conflict(
            "A revoked token stays revoked and no longer changes.", details={"revoked_at": str(locked.revoked_at)}
        )
    changes: dict[str, Any] = {}
    if name is not _UNSET and name != locked.name:
        if not isinstance(name, str) or len(name) > 100:
            raise InvalidInput(validation_errors={"name": ["At most 100 characters."]})
        changes["name"] = name
    if expires_at is not _UNSET and expires_at != locked.expires_at:
        if locked.expires_at is not None and (expires_at is None or expires_at > locked.expires_at):
            raise InvalidInput(
                validation_errors={
                    "expires_at": [
                        f"Can only be brought forward from {locked.expires_at.isoformat()}; "
                        "mint a new token for longer access."
                    ]
                }
            )
        changes["expires_at"] = expires_at
    if changes:
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changes))
        activity_record(
            organization=locked.organization,
            actor=actor,
            user=by_user,
            action="token.updated",
            target=locked,
            request_summary={k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in changes.items()},
        )
    deadline = locked.expires_at
    if "expires_at" in changes and deadline is not None:
        # What it minted never outlives it: brought forward with it.
        for child in _descendants(locked):
            if child.revoked_at is None and (child.expires_at is None or child.expires_at > deadline):
                child.expires_at = deadline
                child.save(update_fields=["expires_at"])
                activity_record(
                    organization=child.organization,
                    actor=actor,
                    user=by_user,
                    action="token.updated",
                    target=child,
                    request_summary={"expires_at": deadline.isoformat(), "with_parent": str(child.parent_id)},
                )
    return locked


def _check_may_manage_token(actor: Actor | None, token: ApiToken) -> None:
    """Everyone manages their own tokens; others' need billing.manage_members, and an owner's
    tokens only another owner (no actor: the platform)."""
    if actor is None or (token.user_id == actor.user_id and token.organization_id == actor.organization.pk):
        return
    if token.organization_id != actor.organization.pk:
        raise NotFound("No such token.")
    if not actor.has_perm("billing.manage_members"):
        raise InsufficientPermissions("Only members who manage members change other people's tokens.")
    holder_role = (
        Membership.objects.filter(user_id=token.user_id, organization_id=token.organization_id)
        .values_list("role", flat=True)
        .first()
    )
    if holder_role == Role.OWNER and actor.role != Role.OWNER:
        raise InsufficientPermissions("Only an owner changes an owner's tokens.")


# --- Members and the organization --------------------------------------------------------


def _check_member_change(
    *, actor: Actor | None, organization: Organization, before: str | None, after: str | None
) -> None:
    """The rules of who may change whom (no actor: the platform, bound only by the last one):

    - changing memberships needs ``billing.manage_members`` in that organization;
    - only an owner makes an owner, or changes or removes one;
    - an organization keeps at least one owner.
    """
    if after is not None and after not in Role.values:
        raise InvalidInput(validation_errors={"role": [f"Unknown role {after!r}; use one of {Role.values}."]})
    if actor is not None:
        if actor.organization.pk != organization.pk:
            raise NotFound("No such membership.")
        if not actor.has_perm("billing.manage_members"):
            raise InsufficientPermissions(
                "Your role does not allow managing members.", details={"required_permission": "billing.manage_members"}
            )
        if Role.OWNER in (before, after) and actor.role != Role.OWNER:
            raise InsufficientPermissions("Only an owner can make, change or remove an owner.")
    if before == Role.OWNER and after != Role.OWNER:
        # Locked: two owners demoting each other at once cannot leave none.
        owners = list(
            Membership.objects.select_for_update()
            .filter(organization=organization, role=Role.OWNER)
            .values_list("pk", flat=True)
        )
        if len(owners) <= 1:
            raise Conflict("An organization keeps at least one owner; make someone else owner first.")


@transaction.atomic
def membership_add(
    *, organization: Organization, user, role: str, actor: Actor | None = None, by_user=None
) -> Membership:
    _check_member_change(actor=actor, organization=organization, before=None, after=role)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise Conflict("This person is already a member; change their role instead.")
    membership = Membership.objects.create(organization=organization, user=user, role=role)
    activity_record(
        organization=organization, actor=actor, user=by_user, action="member.added", target=membership,
        request_summary={"user": str(user), "role": role},
    )  # fmt: skip
    return membership


@transaction.atomic
def membership_role_change(
    *, membership: Membership, role: str, actor: Actor | None = None, by_user=None
) -> Membership:
    locked = Membership.objects.select_for_update().select_related("organization").get(pk=membership.pk)
    if locked.role == role:
        return locked
    _check_member_change(actor=actor, organization=locked.organization, before=locked.role, after=role)
    before, locked.role = locked.role, role
    locked.save(update_fields=["role"])
    activity_record(
        organization=locked.organization, actor=actor, user=by_user, action="member.role_changed", target=locked,
        request_summary={"user": str(locked.user), "before": before, "after": role},
    )  # fmt: skip
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor | None = None, by_user=None) -> None:
    locked = Membership.objects.select_for_update().select_related("organization", "user").get(pk=membership.pk)
    _check_member_change(actor=actor, organization=locked.organization, before=locked.role, after=None)
    activity_record(
        organization=locked.organization, actor=actor, user=by_user, action="member.removed", target=locked,
        request_summary={"user": str(locked.user), "role": locked.role},
    )  # fmt: skip
    locked.delete()


# What an organization's owners and admins may change about it; the rest is the platform's.
ORGANIZATION_FIELDS = ("name", "daily_budget_usd", "monthly_budget_usd")
PLATFORM_ORGANIZATION_FIELDS = ("slug", "is_active", "plan")


@transaction.atomic
def organization_update(
    *, organization: Organization, data: dict[str, Any], actor: Actor | None = None, by_user=None
) -> Organization:
    """Rename the organization or set its budget caps (owners and admins); slug, plan and
    is_active are the platform's (no actor). ``role_permissions`` changes through
    ``role_permissions_set``, for owners."""
    allowed = ORGANIZATION_FIELDS if actor is not None else (*ORGANIZATION_FIELDS, *PLATFORM_ORGANIZATION_FIELDS)
    refused = sorted(set(data) - set(allowed))
    if refused:
        raise InsufficientPermissions(f"{', '.join(refused)}: set by the platform only.", details={"fields": refused})
    if actor is not None and (actor.organization.pk != organization.pk or actor.role not in (Role.OWNER, Role.ADMIN)):
        raise InsufficientPermissions("Only the organization's owners and admins change it.")
    errors: dict[str, list[str]] = {}
    if "name" in data and not (isinstance(data["name"], str) and 0 < len(data["name"].strip()) <= 200):
        errors["name"] = ["1 to 200 characters."]
    for cap in ("daily_budget_usd", "monthly_budget_usd"):
        if cap in data and data[cap] is not None and not (isinstance(data[cap], Decimal) and data[cap] >= 0):
            errors[cap] = ["A non-negative amount in USD, or empty for no cap."]
    if "slug" in data:
        slug = slugify(data["slug"] or "")
        if not slug:
            errors["slug"] = ["A slug needs letters or digits."]
        elif Organization.objects.filter(slug=slug).exclude(pk=organization.pk).exists():
            errors["slug"] = [f"An organization {slug!r} already exists."]
        data = {**data, "slug": slug}
    if errors:
        raise InvalidInput(validation_errors=errors)
    locked = Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
    changes = {field: value for field, value in data.items() if getattr(locked, field) != value}
    if not changes:
        return locked
    summary = {field: [_plain(getattr(locked, field)), _plain(value)] for field, value in changes.items()}
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.save(update_fields=[*changes, "updated_at"])
    activity_record(
        organization=locked, actor=actor, user=by_user, action="organization.updated", target=locked,
        request_summary={"changes": summary},
    )  # fmt: skip
    return locked


def _plain(value: Any) -> Any:
    """A value for the activity log's JSON (plans by slug, money as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    return getattr(value, "slug", None) or str(value)


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
        # The request and response data, bounded and with secret-looking keys redacted.
        request_summary=bounded_redacted(request_summary or {}),
        response_summary=bounded_redacted(response_summary or {}),
        status=status,
        duration_ms=duration_ms,
        tokens=tokens,
        cost=cost,
        request_id=request_id_var.get(),
    )


EXTERNAL_PREFIX = "external."


@transaction.atomic
def activity_log_external(*, actor: Actor, data: dict[str, Any]) -> ActivityLog:
    """An integrator's own agent activity (``POST activity/``), in the organization's log.

    The action is stored under ``external.`` so it can never pass for the platform's own
    (``execution.completed`` …); ``agent_id`` must name an agent of the organization that
    the caller may see (a private agent of someone else's is not found, as everywhere else).
    """
    agent_id = data.get("agent_id")
    if agent_id is not None and not agent_visible(actor, agent_id):
        raise ApiError(
            code="AgentNotFound", message=f"Agent {agent_id} not found.", details={"agent_id": str(agent_id)}
        )
    return activity_record(
        organization=actor.organization,
        actor=actor,
        action=EXTERNAL_PREFIX + data["action"],
        agent_id=agent_id,
        request_summary=data.get("request_data") or {},
        response_summary=data.get("response_data") or {},
        status=data.get("status", ActivityLog.Status.SUCCESS),
        duration_ms=data.get("duration_ms"),
        tokens=data.get("tokens", 0),
        cost=data.get("cost", 0),
    )


def activity_prune(*, older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = ActivityLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
