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


@pytest.mark.django_db
def test_bulk_writes_past_the_protocols_parameter_limit_are_cut_into_batches_that_fit(org):
    """PostgreSQL's protocol counts a statement's parameters in 16 bits: with server-side binding
    one INSERT of 2,500 agents x ~30 columns is refused ("number of parameters must be between 0
    and 65535"). Django sends rows of plain columns as arrays (UNNEST), but not rows with array or
    vector columns (agents' tool lists, knowledge chunks' embeddings). config.postgres cuts them."""
    from agents.models import Agent

    rows = [Agent(organization=org, name=f"Bulk {i}", slug=f"bulk-{i}") for i in range(2_500)]
    fields = [f for f in Agent._meta.concrete_fields if not f.primary_key or f.has_default()]
    assert len(rows) * len(fields) > 65_535
    Agent.objects.bulk_create(rows)
    assert Agent.objects.filter(organization=org, slug__startswith="bulk-").count() == 2_500
    # The collector's pk IN (...) batches for a deletion, one field each.
    assert connection.ops.bulk_batch_size(["id"], list(range(70_000))) == 65_535
