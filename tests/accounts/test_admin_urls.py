"""The organization's admin pages moved from /admin/billing/ to /admin/accounts/ (issue #15);
links and bookmarks to the old addresses still land on the same pages."""

from __future__ import annotations


def test_old_admin_addresses_of_the_moved_models_redirect(client, org, alice, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    moved = {
        "/admin/billing/organization/": "/admin/accounts/organization/",
        f"/admin/billing/organization/{org.pk}/change/": f"/admin/accounts/organization/{org.pk}/change/",
        f"/admin/billing/organization/{org.pk}/usage/": f"/admin/accounts/organization/{org.pk}/usage/",
        "/admin/billing/membership/?role=owner": "/admin/accounts/membership/?role=owner",
        "/admin/billing/apitoken/": "/admin/accounts/apitoken/",
        "/admin/billing/activitylog/": "/admin/accounts/activitylog/",
    }
    for old, new in moved.items():
        response = client.get(old)
        assert (response.status_code, response["Location"]) == (301, new), old
        assert client.get(new).status_code == 200, new


def test_billing_admin_pages_stay_where_they_were(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    for url in ("/admin/billing/plan/", "/admin/billing/modelprice/", "/admin/billing/usagerecord/"):
        assert client.get(url).status_code == 200, url


def test_the_organization_page_links_to_its_usage(client, org, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    page = client.get(f"/admin/accounts/organization/{org.pk}/change/").content.decode()
    assert f"/admin/accounts/organization/{org.pk}/usage/" in page
