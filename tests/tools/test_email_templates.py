"""Email templates: the organization's own, CRUD by admins, refused when they would reach
beyond their data (sandboxed Django templates), another organization's ids are 404."""

from __future__ import annotations

import pytest

from accounts.models import ActivityLog
from tests.conftest import assert_error
from tools.email_templates import template_render
from tools.models import EmailTemplate

pytestmark = pytest.mark.django_db
URL = "/api/v1/email-templates/"


def test_crud(org, adam, client_for):
    api = client_for(adam)
    created = api.post(URL, {"name": "Welcome", "subject": "Hi {{ name }}", "body": "Hello {{ name }}"}, format="json")
    assert created.status_code == 201, created.content
    url = f"{URL}{created.json()['id']}/"
    assert api.get(URL).json()["results"][0]["name"] == "Welcome"
    changed = api.patch(url, {"body": "Hello again {{ name }}"}, format="json")
    assert changed.status_code == 200 and changed.json()["body"] == "Hello again {{ name }}"
    assert ActivityLog.objects.filter(organization=org, action="email_template.save").count() == 2
    assert_error(api.post(URL, {"name": "Welcome", "subject": "s", "body": "b"}, format="json"), 409, "Conflict")
    assert api.delete(url).status_code == 204
    assert not EmailTemplate.objects.exists()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("{% debug %}", "Invalid block tag"),
        ('{% include "base.html" %}', "Invalid block tag"),
        ("{% load static %}", "Invalid block tag"),
        ("{% lorem 99999 w %}", "Invalid block tag"),
        ("{{ name.__class__ }}", "underscores"),
        ('{{ name|ljust:"99999999" }}', "Invalid filter"),
        ("{% for a in l %}{% for b in l %}x{% endfor %}{% endfor %}", "may not nest"),
        ("{% if %}", "Not a valid template"),
    ],
)
def test_a_template_that_reaches_beyond_its_data_is_refused(org, adam, client_for, body, why):
    response = client_for(adam).post(URL, {"name": "T", "subject": "s", "body": body}, format="json")
    error = assert_error(response, 400, "InvalidInput")
    assert why in error["details"]["validation_errors"]["body"][0]
    assert not EmailTemplate.objects.exists()


def test_another_organizations_template_is_not_found(org, other_org, adam, oscar, client_for):
    theirs = EmailTemplate.objects.create(organization=other_org, name="Theirs", subject="s", body="b")
    api = client_for(adam)
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{URL}{theirs.pk}/", {"name": "Mine"}, format="json")
        assert_error(response, 404, "NotFound")
    assert EmailTemplate.objects.get(pk=theirs.pk).name == "Theirs"


def test_members_read_admins_write(org, mia, client_for):
    assert client_for(mia).get(URL).status_code == 200
    denied = client_for(mia).post(URL, {"name": "T", "subject": "s", "body": "b"}, format="json")
    assert_error(denied, 403, "InsufficientPermissions")


def test_rendering_sees_plain_data_only():
    subject, body = template_render(
        subject="{{ items|length }} items",
        body="{{ data.keys|join:',' }}|{{ missing.attr }}|{{ n|add:1 }}",
        variables={"items": [1, 2], "data": {"a": 1}, "n": 41},
    )
    assert subject == "2 items" and body == "a||42"
