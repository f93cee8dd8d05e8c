"""Migrations after the first release are expand-only, so they run while the previous
release still serves (README: "Migrations ship without downtime when additive").

- a new column is nullable or has a database default (the old code's INSERTs omit it);
- an index on an existing table is built CONCURRENTLY (no write lock), in a non-atomic
  migration;
- nothing is removed or renamed in the same release as the code that stops using it (those
  go in a later migration, listed in ALLOWED_CONTRACTIONS with the release that allowed it).

The migrations of the first release (before ``agents.0005``) predate the rule.
"""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

OUR_APPS = {"accounts", "agents", "executions", "memory", "tools", "approvals", "billing"}
FIRST_RELEASE = {
    ("agents", "0001_initial"),
    ("agents", "0002_seed_templates"),
    ("agents", "0003_provider_connections"),
    ("agents", "0004_chains"),
    ("executions", "0001_initial"),
    ("executions", "0002_runtime"),
    ("executions", "0003_triggers_webhooks"),
    ("memory", "0001_initial"),
    ("tools", "0001_initial"),
    ("approvals", "0001_initial"),
    ("billing", "0001_initial"),
    ("billing", "0002_runtime"),
    ("billing", "0003_runtime"),
    ("billing", "0004_plans_prices_rollups"),
}
# (app, migration): why it may contract.
ALLOWED_CONTRACTIONS: dict[tuple[str, str], str] = {
    ("executions", "0005_drop_org_wide_idempotency_key"): (
        "Dec 2026, security issue #14 (M1): the organization-wide unique Idempotency-Key index answered one "
        "person's key with another's run. Dropping it only relaxes a rule the previous release relies on for "
        "the race between two simultaneous requests with one key; its lookup still finds a repeated key."
    ),
    ("agents", "0008_drop_org_wide_chain_idempotency_key"): (
        "Dec 2026, security issue #14 (M1): the same for chain executions' Idempotency-Key."
    ),
    ("tools", "0004_tool_handler_type_mcp"): (
        "Dec 2026, issue #17: AlterField of Tool.handler_type only adds the choice 'mcp'; choices are not in the "
        "database, so no SQL runs and the running release is unaffected."
    ),
    ("executions", "0006_trigger_type_mcp"): (
        "Dec 2026, issue #17: AlterField of Execution.trigger_type only adds the choice 'mcp' (the MCP door); "
        "no SQL runs."
    ),
    ("executions", "0008_trigger_types_openai_a2a"): (
        "Dec 2026, issue #18: AlterField of Execution.trigger_type only adds the choices 'openai' and 'a2a' (the "
        "OpenAI-compatible and A2A doors); no SQL runs."
    ),
    ("executions", "0011_draft_runs_sandbox_calls"): (
        "Dec 2026, issue #19: AlterField of Execution.agent_version only drops NOT NULL (a draft run has no "
        "version); the previous release's INSERTs always name a version and it cannot start a draft run, but it "
        "would fail to show one (it reads agent_version.version): finish the rollout before anyone runs a draft."
    ),
    ("billing", "0008_alert_guardian_breach"): (
        "Dec 2026, issue #20: AlterField of Alert.kind only adds the choice 'guardian_breach' (guardian agents' "
        "monitoring rules); no SQL runs."
    ),
    ("executions", "0013_execution_row_lighter"): (
        "Dec 2026, issue #16: drops (CONCURRENTLY) indexes of the executions row that other indexes make "
        "redundant: organization_id and agent_id alone (the (organization, -created_at) and (agent, "
        "-created_at) indexes lead with them) and status alone with its LIKE twin (partial indexes of the live "
        "statuses and (organization, status) serve its lookups; the pending one is added first). The running "
        "release names no index; its queries only get other plans (checked with EXPLAIN on a seeded table)."
    ),
}
CONTRACTING = (
    migrations.RemoveField,
    migrations.DeleteModel,
    migrations.RenameField,
    migrations.RenameModel,
    migrations.RemoveIndex,
    migrations.RemoveConstraint,
    migrations.AlterField,
)


def _schema_operations(operations: list) -> list[tuple[object, str | None]]:
    """Each operation with the raw SQL that makes it in the database, if any: inside
    SeparateDatabaseAndState the state operations say what the RunSQL beside them does (an
    index Django cannot build concurrently, a constraint dropped concurrently). With no
    database operations at all it changes Django's view only (a model moved between apps with
    its table kept): nothing runs in the database, so nothing there can contract."""
    found: list[tuple[object, str | None]] = []
    for op in operations:
        if isinstance(op, migrations.SeparateDatabaseAndState) and not op.database_operations:
            continue
        if isinstance(op, migrations.SeparateDatabaseAndState):
            sql = " ".join(str(o.sql) for o in op.database_operations if isinstance(o, migrations.RunSQL))
            found += [(state_op, sql) for state_op in op.state_operations]
            found += _schema_operations([o for o in op.database_operations if not isinstance(o, migrations.RunSQL)])
        else:
            found.append((op, None))
    return found


def _problems(key: tuple[str, str], migration: migrations.Migration) -> list[str]:
    created = {op.name.lower() for op in migration.operations if isinstance(op, migrations.CreateModel)}
    found = []
    for op, sql in _schema_operations(migration.operations):
        concurrently = isinstance(op, AddIndexConcurrently) or (sql is not None and "CONCURRENTLY" in sql.upper())
        if isinstance(op, CONTRACTING) and key not in ALLOWED_CONTRACTIONS:
            found.append(f"{type(op).__name__} contracts the schema the running release uses")
        if isinstance(op, migrations.AddField):
            field = op.field
            if not (field.null or field.many_to_many or field.db_default is not NOT_PROVIDED):
                found.append(f"AddField {op.model_name}.{op.name}: NOT NULL without a database default")
        existing_table = op.model_name.lower() not in created if hasattr(op, "model_name") else False
        locking = isinstance(op, migrations.AddIndex | migrations.AddConstraint) and not concurrently
        if locking and existing_table:
            found.append(f"{type(op).__name__} on existing table {op.model_name}: build it CONCURRENTLY")
        if concurrently and migration.atomic:
            found.append(f"{type(op).__name__} built CONCURRENTLY needs `atomic = False`")
    return found


def test_migrations_after_the_first_release_are_expand_only():
    loader = MigrationLoader(None, ignore_no_migrations=True)  # files only, no database
    checked, problems = 0, {}
    for key, migration in loader.disk_migrations.items():
        if key[0] not in OUR_APPS or key in FIRST_RELEASE:
            continue
        checked += 1
        if found := _problems(key, migration):
            problems[key] = found
    assert checked >= 1  # agents.0005 at least
    assert problems == {}


def test_the_rule_catches_what_it_should():
    from django.db import models

    bad = migrations.Migration("0099_bad", "agents")
    bad.operations = [
        migrations.AddField("agent", "flavour", models.CharField(max_length=10)),
        migrations.AddIndex("agent", models.Index(fields=["name"], name="agent_name_x")),
        migrations.RemoveField("agent", "description"),
        AddIndexConcurrently("agent", models.Index(fields=["slug"], name="agent_slug_x")),
    ]
    found = _problems(("agents", "0099_bad"), bad)
    assert len(found) == 4, found

    good = migrations.Migration("0099_good", "agents")
    good.atomic = False
    good.operations = [
        migrations.AddField("agent", "flavour", models.CharField(max_length=10, null=True)),
        migrations.AddField("agent", "level", models.IntegerField(db_default=0)),
        AddIndexConcurrently("agent", models.Index(fields=["slug"], name="agent_slug_x")),
    ]
    assert _problems(("agents", "0099_good"), good) == []


def test_the_rule_sees_through_separate_database_and_state():
    from django.db import models

    unique = models.UniqueConstraint(fields=["slug"], name="agent_slug_u")
    hidden = migrations.Migration("0098_hidden", "agents")
    hidden.operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL('DROP INDEX "x"')],
            state_operations=[migrations.RemoveConstraint("agent", "x")],
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL('CREATE UNIQUE INDEX "agent_slug_u" ON agents_agent (slug)')],
            state_operations=[migrations.AddConstraint("agent", unique)],
        ),
    ]
    found = _problems(("agents", "0098_hidden"), hidden)
    assert len(found) == 2, found

    concurrent = migrations.Migration("0098_concurrent", "agents")
    concurrent.operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL('CREATE UNIQUE INDEX CONCURRENTLY "agent_slug_u" ON x (slug)')],
            state_operations=[migrations.AddConstraint("agent", unique)],
        )
    ]
    assert _problems(("agents", "0098_concurrent"), concurrent) == [
        "AddConstraint built CONCURRENTLY needs `atomic = False`"
    ]
    concurrent.atomic = False
    assert _problems(("agents", "0098_concurrent"), concurrent) == []


def test_a_state_only_move_is_not_a_contraction_but_a_hidden_drop_is():
    moved = migrations.Migration("0097_moved", "agents")
    moved.operations = [
        migrations.SeparateDatabaseAndState(database_operations=[], state_operations=[migrations.DeleteModel("agent")])
    ]
    assert _problems(("agents", "0097_moved"), moved) == []

    dropped = migrations.Migration("0097_dropped", "agents")
    dropped.operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL('DROP TABLE "agents_agent"')],
            state_operations=[migrations.DeleteModel("agent")],
        )
    ]
    assert _problems(("agents", "0097_dropped"), dropped) == [
        "DeleteModel contracts the schema the running release uses"
    ]
