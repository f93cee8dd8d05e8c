from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ActivityLog, ApiToken
from accounts.services import api_token_create, api_token_revoke, api_token_update
from accounts.tokens import hash_token
from config.api.errors import ApiError
from tests.conftest import assert_error


def test_token_is_stored_hashed_and_shown_once(alice, org, client_for):
    client = client_for(alice)
    response = client.post("/api/v1/tokens/", {"name": "ci", "scopes": ["agents:read"]}, format="json")
    assert response.status_code == 201
    raw = response.json()["token"]
    assert raw.startswith("agt_") and len(raw) > 40
    row = ApiToken.objects.get(id=response.json()["id"])
    # Only the hash and a short prefix are kept; the value is in no column.
    assert row.token_hash == hash_token(raw)
    assert raw not in str(ApiToken.objects.filter(pk=row.pk).values().get())
    assert row.prefix == raw[:12]
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert all("token" not in item and "token_hash" not in item for item in listed)
    assert any(item["prefix"] == row.prefix for item in listed)


def test_token_authenticates_until_revoked(alice, org):
    token, raw = api_token_create(user=alice, organization=org, scopes=["agents:read"])
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/tokens/").status_code == 200
    api_token_revoke(token=token)
    assert_error(client.get("/api/v1/tokens/"), 401, "TokenRevoked")


def test_expired_token_is_refused(alice, org):
    token, raw = api_token_create(user=alice, organization=org, expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert_error(client.get("/api/v1/tokens/"), 401, "TokenExpired")


def test_unknown_and_malformed_tokens(db):
    from rest_framework.test import APIClient

    client = APIClient()
    assert_error(client.get("/api/v1/tokens/"), 401, "NotAuthenticated")
    client.credentials(HTTP_AUTHORIZATION="Bearer agt_nope")
    assert_error(client.get("/api/v1/tokens/"), 401, "InvalidToken")
    client.credentials(HTTP_AUTHORIZATION="Bearer a b")
    assert_error(client.get("/api/v1/tokens/"), 401, "InvalidToken")


def test_unknown_scope_is_refused_and_nothing_written(alice, org, client_for):
    client = client_for(alice)
    before = ApiToken.objects.count()
    error = assert_error(client.post("/api/v1/tokens/", {"scopes": ["root"]}, format="json"), 400, "InvalidInput")
    assert "scopes.0" in error["details"]["validation_errors"]
    assert ApiToken.objects.count() == before
    with pytest.raises(ApiError):
        api_token_create(user=alice, organization=org, scopes=["agents:read", "everything"])


def test_token_cannot_mint_wider_scopes(alice, client_for):
    client = client_for(alice, scopes=["agents:read"])
    error = assert_error(
        client.post("/api/v1/tokens/", {"scopes": ["agents:read", "admin"]}, format="json"), 400, "InvalidInput"
    )
    assert "scopes" in error["details"]["validation_errors"]
    assert client.post("/api/v1/tokens/", {"scopes": ["agents:read"]}, format="json").status_code == 201


def test_unknown_fields_are_refused(alice, client_for):
    client = client_for(alice)
    error = assert_error(client.post("/api/v1/tokens/", {"nmae": "typo"}, format="json"), 400, "InvalidInput")
    assert "nmae" in error["details"]["validation_errors"]


def test_revoke_through_api_and_foreign_token_is_404(alice, oscar, client_for):
    mine = client_for(alice)
    theirs = client_for(oscar)
    foreign_id = ApiToken.objects.filter(user=oscar).first().id
    assert_error(mine.delete(f"/api/v1/tokens/{foreign_id}/"), 404, "NotFound")
    assert ApiToken.objects.get(id=foreign_id).revoked_at is None
    own_id = ApiToken.objects.filter(user=alice).first().id
    assert mine.delete(f"/api/v1/tokens/{own_id}/").status_code == 204
    assert_error(mine.get("/api/v1/tokens/"), 401, "TokenRevoked")
    assert theirs.get("/api/v1/tokens/").status_code == 200


def test_token_of_a_removed_member_stops_working(alice, org, mia, client_for):
    client = client_for(mia)
    assert client.get("/api/v1/tokens/").status_code == 200
    mia.memberships.all().delete()
    assert_error(client.get("/api/v1/tokens/"), 403, "InsufficientPermissions")


def test_management_commands_print_the_value_last(db, capsys):
    call_command("create_organization", "initech", "--name", "Initech", "--owner", "peter@initech.test")
    org_id = capsys.readouterr().out.strip().splitlines()[-1]
    call_command(
        "create_api_token", "--user", "peter@initech.test", "--organization", "initech", "--scopes", "agents:read"
    )
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert str(token.organization_id) == org_id
    assert token.scopes == ["agents:read"]


# --- Tokens minted by tokens (security issue #14, M2) -------------------------------------


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _mint(client: APIClient, **body) -> dict:
    response = client.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_token_cannot_mint_one_that_outlives_it(alice, org):
    parent, raw = api_token_create(user=alice, organization=org, expires_in_days=10)
    client = _bearer(raw)
    before = ApiToken.objects.count()
    error = assert_error(
        client.post("/api/v1/tokens/", {"name": "forever?", "expires_in_days": 3650}, format="json"),
        400,
        "InvalidInput",
    )
    assert "outlive" in error["message"] and error["details"]["parent_expires_at"] == parent.expires_at.isoformat()
    assert error["details"]["validation_errors"]["expires_in_days"] == ["At most 9 for the token you are using."]
    assert ApiToken.objects.count() == before  # nothing half-written

    # Left out, the expiry is the parent's (never "never"); a shorter one is kept.
    child = _mint(client, name="inherits")
    assert child["expires_at"] == client.get(f"/api/v1/tokens/{parent.pk}/").json()["expires_at"]
    assert child["parent_id"] == str(parent.pk)
    shorter = _mint(client, name="shorter", expires_in_days=2)
    assert ApiToken.objects.get(pk=shorter["id"]).expires_at < parent.expires_at


def test_a_token_expiring_tomorrow_mints_only_what_expires_with_it(alice, org):
    parent, raw = api_token_create(user=alice, organization=org, expires_in_days=1)
    client = _bearer(raw)
    error = assert_error(client.post("/api/v1/tokens/", {"expires_in_days": 1}, format="json"), 400, "InvalidInput")
    assert error["details"]["validation_errors"]["expires_in_days"] == [
        "Leave it out: the new token then expires with the one you are using."
    ]
    child = ApiToken.objects.get(pk=_mint(client)["id"])
    assert child.expires_at == parent.expires_at and child.parent_id == parent.pk


def test_revoking_a_token_revokes_what_it_minted_down_the_tree(alice, org):
    root, raw = api_token_create(user=alice, organization=org)
    child = _mint(_bearer(raw), name="child")
    grandchild = _mint(_bearer(child["token"]), name="grandchild")
    _, sibling_raw = api_token_create(user=alice, organization=org, name="unrelated")
    assert _bearer(grandchild["token"]).get("/api/v1/tokens/").status_code == 200

    assert _bearer(raw).delete(f"/api/v1/tokens/{root.pk}/").status_code == 204

    for value in (raw, child["token"], grandchild["token"]):
        assert_error(_bearer(value).get("/api/v1/tokens/"), 401, "TokenRevoked")
    assert _bearer(sibling_raw).get("/api/v1/tokens/").status_code == 200
    revoked = set(ActivityLog.objects.filter(action="token.revoked").values_list("target_id", flat=True))
    assert revoked == {str(root.pk), child["id"], grandchild["id"]}


def test_revoking_a_child_leaves_its_parent_working(alice, org):
    _, raw = api_token_create(user=alice, organization=org)
    child = _mint(_bearer(raw), name="child")
    assert _bearer(raw).delete(f"/api/v1/tokens/{child['id']}/").status_code == 204
    assert _bearer(raw).get("/api/v1/tokens/").status_code == 200
    assert_error(_bearer(child["token"]).get("/api/v1/tokens/"), 401, "TokenRevoked")


def test_tokens_minted_in_a_session_have_no_parent_and_keep_their_expiry(alice, org):
    session = APIClient()
    session.force_login(alice)
    made = _mint(session, name="from the browser", expires_in_days=3650)
    token = ApiToken.objects.get(pk=made["id"])
    assert token.parent_id is None and made["parent_id"] is None
    assert token.expires_at > timezone.now() + timedelta(days=3000)


@pytest.mark.django_db(transaction=True)
def test_a_child_minted_while_its_parent_is_revoked_never_survives(alice, org):
    """Mint and revoke race on the parent's row lock: either the child is refused, or it
    exists when the revocation walks the tree and is revoked with its parent."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def closing(work, *args, **kwargs):
        try:
            return work(*args, **kwargs)
        finally:
            connection.close()

    def mint(raw: str):
        return _bearer(raw).post("/api/v1/tokens/", {}, format="json")

    for _ in range(8):
        parent, raw = api_token_create(user=alice, organization=org)
        with ThreadPoolExecutor(2) as pool:
            minted = pool.submit(closing, mint, raw)
            revoked = pool.submit(closing, api_token_revoke, token=parent)
            response, _ = minted.result(), revoked.result()
        assert response.status_code in (201, 401), response.content
        assert not ApiToken.objects.filter(parent=parent, revoked_at__isnull=True).exists()


def test_bringing_a_tokens_expiry_forward_brings_its_childrens_with_it(alice, org):
    root, raw = api_token_create(user=alice, organization=org)  # never expires
    child = _mint(_bearer(raw), name="child")
    grandchild = _mint(_bearer(child["token"]), name="grandchild", expires_in_days=1)
    assert child["expires_at"] is None
    soon = timezone.now() + timedelta(days=2)
    api_token_update(token=root, expires_at=soon)
    assert ApiToken.objects.get(pk=child["id"]).expires_at == soon
    assert ApiToken.objects.get(pk=grandchild["id"]).expires_at < soon  # already sooner: kept
    later = timezone.now() + timedelta(days=30)
    with pytest.raises(ApiError) as refused:
        api_token_update(token=root, expires_at=later)
    assert refused.value.code == "InvalidInput" and ApiToken.objects.get(pk=root.pk).expires_at == soon
