"""Finding the organization's people for tools that name one (notify_user, task_create)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from tools.builtins.base import ToolError


def member(*, organization_id: Any, ref: str) -> Any:
    """A member of the organization by user id, username or email; ToolError otherwise."""
    User = get_user_model()
    ref = str(ref).strip()
    match = Q(username__iexact=ref) | Q(email__iexact=ref)
    if ref.isdigit():
        match |= Q(pk=int(ref))
    users = list(
        User.objects.filter(match, memberships__organization_id=organization_id, is_active=True).distinct()[:2]
    )
    if len(users) != 1:
        # The same answer for "no such user" and "not in this organization": nothing leaks.
        raise ToolError(f"No member of this organization matches {ref!r}.")
    return users[0]
