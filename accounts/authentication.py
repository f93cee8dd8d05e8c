from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.tokens import hash_token

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class TokenFailed(exceptions.AuthenticationFailed):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.agentry_code = code


def token_for_raw(raw: str) -> ApiToken:
    """The live token ``raw`` names (its user and organization active), or TokenFailed.

    Shared by the REST API's authentication and the protocol doors that are not DRF views
    (the MCP server at ``/mcp/``)."""
    token = ApiToken.objects.select_related("user", "organization").filter(token_hash=hash_token(raw)).first()
    if token is None:
        raise TokenFailed("InvalidToken", "The token is not valid.")
    if token.is_revoked:
        raise TokenFailed("TokenRevoked", "The token has been revoked.")
    if token.is_expired:
        raise TokenFailed("TokenExpired", "The token has expired.")
    if not token.user.is_active or not token.organization.is_active:
        raise TokenFailed("InvalidToken", "The token's user or organization is disabled.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
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
