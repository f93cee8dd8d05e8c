"""An organization admin with staff status changes in the admin exactly what the API lets
their role change, through the same services, and every change is in the activity log
(security issue #14, H4). Driven through the real admin with Django's test client."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import ActivityLog, ApiToken, Membership, Organization
from accounts.services import api_token_create, api_token_revoke
from billing.models import Plan
from tests.admin_forms import page_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _staff(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def _change(model, pk) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{pk}/change/"


def _logged(action: str, user, **filters) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(action=action, user=user, **filters))


# --- memberships ---------------------------------------------------------------------------


def test_an_organization_admin_cannot_make_themself_owner(org, alice, adam):
    client = _staff(adam)
    mine = Membership.objects.get(user=adam, organization=org)
    url = _change(Membership, mine.pk)
    response = client.post(url, page_data(client, url, role="owner"))
    assert response.status_code == 200  # the form again, with the refusal
    assert "Only an owner can make, change or remove an owner." in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == "admin"
    assert not ActivityLog.objects.filter(action__startswith="member.").exists()


def test_an_organization_admin_cannot_change_or_remove_an_owner(org, alice, adam):
    client = _staff(adam)
    owner = Membership.objects.get(user=alice, organization=org)
    url = _change(Membership, owner.pk)
    assert client.post(url, {"role": "viewer"}).status_code == 403
    assert client.post(f"/admin/accounts/membership/{owner.pk}/delete/", {"post": "yes"}).status_code == 403
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_role_changes_go_through_the_service_and_are_logged(org, alice, adam, mia):
    client = _staff(adam)
    membership = Membership.objects.get(user=mia, organization=org)
    url = _change(Membership, membership.pk)
    response = client.post(url, page_data(client, url, role="viewer"))
    assert response.status_code == 302, response.content.decode()[:3000]
    membership.refresh_from_db()
    assert membership.role == "viewer"
    [row] = _logged("member.role_changed", adam)
    assert row.request_summary == {"user": str(mia), "before": "member", "after": "viewer"}


def test_an_owner_makes_an_owner_and_the_last_owner_stays(org, alice, adam):
    client = _staff(alice)
    own = Membership.objects.get(user=alice, organization=org)
    url = _change(Membership, own.pk)
    response = client.post(url, page_data(client, url, role="admin"))
    assert "keeps at least one owner" in response.content.decode()
    own.refresh_from_db()
    assert own.role == "owner"

    theirs = Membership.objects.get(user=adam, organization=org)
    url = _change(Membership, theirs.pk)
    assert client.post(url, page_data(client, url, role="owner")).status_code == 302
    theirs.refresh_from_db()
    assert theirs.role == "owner" and _logged("member.role_changed", alice)


def test_an_organization_admin_adds_members_but_not_owners(org, adam, other_org, oscar):
    beta = Organization.objects.create(name="Beta", slug="beta")
    Membership.objects.create(user=adam, organization=beta, role="admin")
    nina = UserFactory(username="nina@beta.test")
    Membership.objects.create(user=nina, organization=beta, role="member")
    client = _staff(adam)
    add = "/admin/accounts/membership/add/"
    form = client.get(add).context["adminform"].form
    # Only people already in the admin's organizations are offered; nobody of another tenant.
    assert nina in form.fields["user"].queryset and oscar not in form.fields["user"].queryset
    assert set(form.fields["organization"].queryset) == {org, beta}

    as_owner = client.post(add, {"user": nina.pk, "organization": org.pk, "role": "owner"})
    assert as_owner.status_code == 200 and "Only an owner can make" in as_owner.content.decode()
    assert not Membership.objects.filter(user=nina, organization=org).exists()
    assert client.post(add, {"user": nina.pk, "organization": org.pk, "role": "member"}).status_code == 302
    assert Membership.objects.get(user=nina, organization=org).role == "member"
    assert _logged("member.added", adam, organization=org)
    foreign = client.post(add, {"user": oscar.pk, "organization": other_org.pk, "role": "admin"})
    assert foreign.status_code == 200 and not Membership.objects.filter(user=oscar, organization=org).exists()
    assert Membership.objects.filter(organization=other_org).count() == 1


# --- the organization ---------------------------------------------------------------------


def test_an_organization_admin_cannot_set_the_plan_slug_activity_or_role_permissions(org, alice, adam):
    premium = Plan.objects.create(slug="premium", name="Premium", included_runs=10**6, allow_overage=True)
    client = _staff(adam)
    url = _change(Organization, org.pk)
    data = page_data(client, url, name="Acme Corp", daily_budget_usd="25.00")
    data.update(
        plan=str(premium.pk), slug="acme-corp", role_permissions='{"member": ["billing.manage_members"]}'
    )  # fields an admin is not offered, sent anyway
    data.pop("is_active", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    org.refresh_from_db()
    assert (org.plan_id, org.slug, org.is_active, org.role_permissions) == (None, "acme", True, {})
    assert (org.name, org.daily_budget_usd) == ("Acme Corp", Decimal("25.00"))
    [row] = _logged("organization.updated", adam)
    assert row.request_summary["changes"] == {"name": ["Acme", "Acme Corp"], "daily_budget_usd": [None, "25.00"]}


def test_owners_change_role_permissions_through_the_service(org, alice):
    client = _staff(alice)
    url = _change(Organization, org.pk)
    bad = client.post(url, page_data(client, url, role_permissions='{"owner": [], "viewer": ["no.such"]}'))
    assert bad.status_code == 200 and "Not an editable role" in bad.content.decode()
    org.refresh_from_db()
    assert org.role_permissions == {}

    good = client.post(url, page_data(client, url, role_permissions='{"viewer": ["agents.view_agent"]}'))
    assert good.status_code == 302, good.content.decode()[:3000]
    org.refresh_from_db()
    assert org.role_permissions == {"viewer": ["agents.view_agent"]}
    assert _logged("roles.updated", alice)


def test_plans_are_set_by_platform_superusers_only_and_logged(org, alice):
    premium = Plan.objects.create(slug="premium", name="Premium")
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    url = _change(Organization, org.pk)
    assert client.post(url, page_data(client, url, plan=str(premium.pk))).status_code == 302
    org.refresh_from_db()
    assert org.plan == premium
    [row] = _logged("organization.updated", root)
    assert row.request_summary["changes"] == {"plan": [None, "premium"]}


# --- API tokens ---------------------------------------------------------------------------


def test_a_revoked_token_stays_revoked(org, alice, adam):
    token, _ = api_token_create(user=adam, organization=org, expires_in_days=1)
    api_token_revoke(token=token)
    revoked_at = ApiToken.objects.get(pk=token.pk).revoked_at
    client = _staff(adam)
    url = _change(ApiToken, token.pk)
    later = timezone.now() + timedelta(days=400)
    client.post(
        url,
        {
            "name": "renamed",
            "revoked_at_0": "",
            "revoked_at_1": "",
            "expires_at_0": later.date().isoformat(),
            "expires_at_1": "00:00:00",
            "prefix": "agt_XXXXXXXX",
            "token_hash": "0" * 64,
        },
    )
    row = ApiToken.objects.get(pk=token.pk)
    assert (row.revoked_at, row.expires_at, row.name) == (revoked_at, token.expires_at, token.name)
    assert (row.prefix, row.token_hash) == (token.prefix, token.token_hash)


def test_a_token_expiry_is_only_brought_forward(org, adam):
    token, _ = api_token_create(user=adam, organization=org, expires_in_days=10)
    client = _staff(adam)
    url = _change(ApiToken, token.pk)
    later = token.expires_at + timedelta(days=30)
    refused = client.post(url, page_data(client, url, expires_at_0=later.date().isoformat()))
    assert refused.status_code == 200 and "Can only be brought forward" in refused.content.decode()
    assert ApiToken.objects.get(pk=token.pk).expires_at == token.expires_at
    cleared = client.post(url, page_data(client, url, expires_at_0="", expires_at_1=""))
    assert cleared.status_code == 200 and ApiToken.objects.get(pk=token.pk).expires_at == token.expires_at

    sooner = token.expires_at - timedelta(days=5)
    data = page_data(client, url, name="ci", expires_at_0=sooner.date().isoformat(), prefix="agt_hijacked")
    assert client.post(url, data).status_code == 302
    row = ApiToken.objects.get(pk=token.pk)
    assert row.expires_at.date() == sooner.date() and row.name == "ci" and row.prefix == token.prefix
    assert _logged("token.updated", adam)


def test_revoking_in_the_admin_is_the_services_revocation(org, adam, mia):
    parent, _ = api_token_create(user=mia, organization=org)
    child, _ = api_token_create(
        user=mia,
        organization=org,
        actor=Actor(organization=org, user=mia, membership=Membership.objects.get(user=mia), token=parent),
    )
    client = _staff(adam)
    url = _change(ApiToken, parent.pk)
    assert client.post(url, page_data(client, url, revoke="on")).status_code == 302
    assert ApiToken.objects.get(pk=parent.pk).is_revoked and ApiToken.objects.get(pk=child.pk).is_revoked
    assert {row.target_id for row in _logged("token.revoked", adam)} == {str(parent.pk), str(child.pk)}


def test_an_organization_admin_revokes_members_tokens_not_owners(org, alice, adam, mia):
    members, _ = api_token_create(user=mia, organization=org)
    owners, _ = api_token_create(user=alice, organization=org)
    client = _staff(adam)
    response = client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [str(members.pk), str(owners.pk)]},
        follow=True,
    )
    assert "Only an owner changes an owner" in response.content.decode()
    assert ApiToken.objects.get(pk=members.pk).is_revoked
    assert not ApiToken.objects.get(pk=owners.pk).is_revoked
    assert client.post(f"/admin/accounts/apitoken/{members.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(pk=members.pk).exists()  # revoked, never deleted
