"""/admin/dashboard/: scoped numbers for superusers and organization admins."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_superuser_sees_every_organization(tenants, django_user_model):
    mine, theirs = tenants
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    response = _login(root).get("/admin/dashboard/")
    assert response.status_code == 200
    context = response.context
    assert context["all_organizations"] is True
    assert dict(context["runs_by_status"]) == {"completed": 5, "waiting_approval": 2}
    budgets = {row["organization"].slug: row for row in context["budgets"]}
    assert str(budgets[mine.organization.slug]["cost_today"]) == "1.500000"
    assert str(budgets[theirs.organization.slug]["cost_today"]) == "7.250000"
    assert {a.pk for a in context["approvals"]} == {mine.approval.pk, theirs.approval.pk}
    assert {a.pk for a in context["failing_agents"]} == {mine.failing.pk, theirs.failing.pk}
    assert set(context["queues"]) == {"default", "io"}
    html = response.content.decode()
    assert "theirs_action" in html and "mine_action" in html
    assert re.search(r"2\s*hours", html)  # approval age


def test_organization_admin_sees_only_their_organization(tenants, adam):
    mine, theirs = tenants
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    response = _login(adam).get("/admin/dashboard/")
    assert response.status_code == 200
    context = response.context
    assert context["all_organizations"] is False
    assert dict(context["runs_by_status"]) == {"completed": 2, "waiting_approval": 1}
    assert [row["organization"].pk for row in context["budgets"]] == [mine.organization.pk]
    assert str(context["budgets"][0]["daily_budget"]) == "10.00"
    assert [a.pk for a in context["approvals"]] == [mine.approval.pk]
    assert [a.pk for a in context["failing_agents"]] == [mine.failing.pk]
    html = response.content.decode()
    assert "theirs" not in html and theirs.organization.name not in html


def test_dashboard_is_refused_to_others_and_linked_from_the_index(tenants, mia, adam, client):
    assert client.get("/admin/dashboard/").status_code == 302  # to the admin login
    mia.is_staff = True  # staff, but a member: manages no organization
    mia.save(update_fields=["is_staff"])
    assert _login(mia).get("/admin/dashboard/").status_code == 403
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    index = _login(adam).get("/admin/")
    assert index.status_code == 200
    assert 'href="/admin/dashboard/"' in index.content.decode()


def test_dashboard_numbers_link_to_the_rows_they_count(tenants, django_user_model):
    from html import unescape

    mine, theirs = tenants
    root = _login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    html = root.get("/admin/dashboard/").content.decode()
    content = html[html.index('id="content-main"') :]
    links = {unescape(href) for href in re.findall(r'href="([^"]+)"', content)}
    completed = next(link for link in links if "status__exact=completed" in link)
    # The link's list holds exactly the runs the number counts.
    listed = root.get(completed)
    assert listed.status_code == 200 and listed.context["cl"].result_count == 5
    mine_runs = next(link for link in links if f"organization__id__exact={mine.organization.pk}" in link)
    assert root.get(mine_runs).context["cl"].result_count == 3  # 2 completed + 1 waiting
    for link in links:
        assert root.get(link).status_code == 200, link
    assert f"/admin/approvals/approvalrequest/{mine.approval.pk}/change/" in links
    assert f"/admin/accounts/organization/{theirs.organization.pk}/usage/" in links
