"""The tenant's models moved from billing to accounts without moving data (issue #15).

The test database is built from an empty one by the migrations (the fresh path). Here the
other path: a database at the last migration before the move, with rows written through the
models as they were then (billing.Organization, ...), migrated forward and read back through
accounts' models; its content types and permissions follow the models.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import ActivityLog, ApiToken, Membership, Organization
from accounts.tokens import hash_token
from billing.models import Plan, UsageRecord
from tools.models import Task

# The migrations that re-point the foreign keys and move the models (state only).
MOVE = {
    ("accounts", "0001_initial"),
    ("accounts", "0002_content_types"),
    ("billing", "0006_tenant_moved_to_accounts"),
    ("agents", "0009_organization_in_accounts"),
    ("approvals", "0002_organization_in_accounts"),
    ("executions", "0007_organization_in_accounts"),
    ("memory", "0003_organization_in_accounts"),
    ("tools", "0005_organization_in_accounts"),
}


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


def _before_the_move(executor: MigrationExecutor) -> list[tuple[str, str]]:
    """Each app's last migration before the move (the head a running database was at)."""
    graph = executor.loader.graph

    def after_the_move(key: tuple[str, str]) -> bool:
        # The move itself, or a later migration built on it (added since: walk past those too).
        return key in MOVE or any(ancestor in MOVE for ancestor in graph.forwards_plan(key))

    heads = []
    for node in graph.leaf_nodes():
        while after_the_move(node):  # accounts' own migrations have no earlier one: the app did not exist
            earlier = [parent.key for parent in graph.node_map[node].parents if parent.key[0] == node[0]]
            node = earlier[0] if earlier else None
            if node is None:
                break
        if node is not None:
            heads.append(node)
    return heads


def test_the_move_runs_no_sql(db):
    executor = _executor()
    graph = executor.loader.graph
    state = executor.loader.project_state(_before_the_move(executor))
    sql: list[str] = []
    for key in graph.forwards_plan(("accounts", "0002_content_types")):
        if key not in MOVE or key == ("accounts", "0002_content_types"):  # that one is data only
            continue
        migration = graph.nodes[key]
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
        sql += [line for line in editor.collected_sql if line.strip() and not line.lstrip().startswith("--")]
    assert sql == []
    # ...and leaves Django's view of the tables where it was: the same table names.
    assert state.apps.get_model("accounts", "Organization")._meta.db_table == "billing_organization"
    assert state.apps.get_model("tools", "Task")._meta.get_field("organization").related_model._meta.label == (
        "accounts.Organization"
    )


def test_the_fresh_database_is_at_the_head(db):
    executor = _executor()
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    assert executor.loader.applied_migrations.keys() >= MOVE


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_through_accounts_after_it():
    executor = _executor()
    old_heads = _before_the_move(executor)
    assert ("billing", "0005_apitoken_parent") in old_heads
    try:
        executor.migrate([("accounts", None)])  # unapplies the move and everything built on it
        executor = _executor()
        assert not MOVE & executor.loader.applied_migrations.keys()
        old = executor.loader.project_state(old_heads).apps

        ct = old.get_model("contenttypes", "ContentType").objects.get(model="organization")
        assert ct.app_label == "billing"  # the reverse relabelled it back
        user = old.get_model("auth", "User").objects.create(username="olga@old.test")
        plan = old.get_model("billing", "Plan").objects.create(slug="old", name="Old")
        org = old.get_model("billing", "Organization").objects.create(name="Old Co", slug="old-co", plan=plan)
        old.get_model("billing", "Membership").objects.create(user=user, organization=org, role="owner")
        token = old.get_model("billing", "ApiToken").objects.create(
            user=user, organization=org, prefix="agt_old", token_hash=hash_token("agt_old-value"), scopes=["admin"]
        )
        old.get_model("billing", "ActivityLog").objects.create(organization=org, user=user, token=token, action="x.y")
        old.get_model("billing", "UsageRecord").objects.create(
            organization=org, provider="openai", model="gpt-4o", cost=Decimal("0.5")
        )
        old.get_model("tools", "Task").objects.create(organization=org, title="carried over")
    finally:
        executor = _executor()
        executor.migrate(executor.loader.graph.leaf_nodes())

    moved = Organization.objects.get(slug="old-co")
    assert moved.plan == Plan.objects.get(slug="old")
    assert Membership.objects.get(organization=moved).user.username == "olga@old.test"
    token = ApiToken.objects.get(token_hash=hash_token("agt_old-value"))
    assert token.organization == moved and token.has_scope("agents:read")
    assert ActivityLog.objects.get(organization=moved).token == token
    assert UsageRecord.objects.get(organization=moved).cost == Decimal("0.5")
    assert Task.objects.get(organization=moved).title == "carried over"

    # The same content type row, relabelled: permissions and admin log entries follow it.
    assert ContentType.objects.get_for_model(Organization).pk == ct.pk
    assert not ContentType.objects.filter(app_label="billing", model="organization").exists()
    assert Permission.objects.get(codename="change_organization").content_type.app_label == "accounts"
