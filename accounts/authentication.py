from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts import auth_cache
from accounts.models import ApiToken, Membership
from accounts.tokens import hash_token

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def token_membership(token: ApiToken) -> Membership | None:
    """The membership ``token`` acts through: its user's in its organization, if still active."""
    return (
        Membership.objects.select_related("organization")
        .filter(user=token.user, organization_id=token.organization_id, organization__is_active=True)
        .first()
    )


class TokenFailed(exceptions.AuthenticationFailed):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.agentry_code = code


def token_for_raw(raw: str) -> ApiToken:
    """The live token ``raw`` names (its user and organization active), or TokenFailed.

    Shared by the REST API's authentication and the protocol doors that are not DRF views
    (the MCP server at ``/mcp/``). A token seen before comes from the auth cache with its
    membership (``accounts.auth_cache``: voided by any change to tokens, memberships, users
    or organizations); revocation, expiry and the active flags are checked either way."""
    token_hash = hash_token(raw)
    generation, hit = auth_cache.lookup(token_hash)
    if hit is not None:
        token, membership = hit
    else:
        token = (
            ApiToken.objects.select_related("user", "organization")
            # Cached entries never hold the password's hash; a save of the user reads it back.
            .defer("user__password")
            .filter(token_hash=token_hash)
            .first()
        )
        membership = None
    if token is None:
        raise TokenFailed("InvalidToken", "The token is not valid.")
    if token.is_revoked:
        raise TokenFailed("TokenRevoked", "The token has been revoked.")
    if token.is_expired:
        raise TokenFailed("TokenExpired", "The token has expired.")
    if not token.user.is_active or not token.organization.is_active:
        raise TokenFailed("InvalidToken", "The token's user or organization is disabled.")
    now = timezone.now()
    stamp = token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY
    if stamp:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    if hit is None or stamp:
        if membership is None:
            membership = token_membership(token)
        if membership is not None:  # a token whose user left the organization is not kept
            auth_cache.store(token_hash, generation, token, membership)
    token._agentry_membership = membership  # type: ignore[attr-defined]
    return token


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer agt_…`` -> (user, ApiToken)."""

    keyword = b"bearer"

    def authenticate(self, request: Request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise TokenFailed("InvalidToken", "The Authorization header must be 'Bearer <token>'.")
        try:
            raw = parts[1].decode()
        except UnicodeDecodeError:
            raise TokenFailed("InvalidToken", "The token is not valid.") from None
        token = token_for_raw(raw)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class OrganizationSessionAuthentication(SessionAuthentication):
    """The admin/page session, for the browsable docs and the approver pages' fetches."""
