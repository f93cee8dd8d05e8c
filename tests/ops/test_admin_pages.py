"""Every registered admin page renders for a superuser and for an organization admin, and
an organization admin's changelists hold no other organization's rows."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.admin_scoping import OrganizationScopedAdmin

pytestmark = pytest.mark.django_db

ALLOWED_REFUSALS = (302, 403)


def _url(model, page: str, *args) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)
    except NoReverseMatch:
        return None


def _pages(client: Client, *, refusals_ok: bool) -> list[str]:
    problems = []
    for model, model_admin in admin.site._registry.items():
        urls = [_url(model, "changelist"), _url(model, "add")]
        obj = model_admin.get_queryset(_request_of(client)).first()
        if obj is not None:
            urls.append(_url(model, "change", obj.pk))
        for url in filter(None, urls):
            status = client.get(url).status_code
            if status == 200 or (refusals_ok and status in ALLOWED_REFUSALS):
                continue
            # add pages of read-only models answer 403 even to superusers: legitimate.
            if status == 403 and url.endswith("/add/") and not model_admin.has_add_permission(_request_of(client)):
                continue
            problems.append(f"{url}: {status}")
    return problems


def _request_of(client: Client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    return request


def test_every_admin_page_renders_for_a_superuser(tenants, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    assert _pages(client, refusals_ok=False) == []


def test_every_admin_page_renders_for_an_organization_admin_within_their_organization(tenants, adam):
    mine, theirs = tenants
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(adam)
    assert _pages(client, refusals_ok=True) == []

    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, OrganizationScopedAdmin):
            continue
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, (model, response.status_code)
        shown = response.context["cl"].queryset
        path = model_admin.organization_path
        leaked = shown.filter(**{f"{path}__in": [theirs.organization.pk]})
        assert not leaked.exists(), (model, list(leaked[:3]))
        checked += 1
    assert checked >= 5
    # The other organization's rows exist, so the check above could have failed.
    agents = client.get(_url(type(mine.agent), "changelist")).context["cl"].queryset
    assert set(agents.values_list("pk", flat=True)) == {mine.agent.pk, mine.failing.pk}
    assert client.get(_url(type(theirs.agent), "change", theirs.agent.pk)).status_code in (302, 404)
