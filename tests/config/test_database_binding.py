"""Statements are bound server-side and prepared on their connection (issue #16):
``DB_SERVER_SIDE_BINDING`` (on by default) and ``DB_PREPARE_THRESHOLD``."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Organization
from tests.config.test_settings import _manage


def test_binding_and_preparing_follow_the_environment():
    script = (
        "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    on = _manage("shell", "-c", script, DJANGO_SETTINGS_MODULE="config.settings.dev", DB_PREPARE_THRESHOLD="3")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip().splitlines()[-1] == "True 3"
    off = _manage("shell", "-c", script, DJANGO_SETTINGS_MODULE="config.settings.dev", DB_SERVER_SIDE_BINDING="0")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip().splitlines()[-1] == "None None"  # Django's default: client-side, never prepared


@pytest.mark.django_db
def test_a_repeated_statement_is_prepared_on_its_connection():
    assert settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    for _ in range(threshold + 1):
        assert not Organization.objects.filter(slug="no-such-organization-prepared").exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s AND statement LIKE %s",
            ["%slug%", "%$1%"],
        )
        prepared = [row[0] for row in cursor.fetchall()]
    assert prepared, "the statement run more than prepare_threshold times is not prepared"
