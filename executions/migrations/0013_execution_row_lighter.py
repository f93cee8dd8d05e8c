"""A lighter executions row (issue #16): fewer indexes to maintain on every INSERT and every
UPDATE that cannot stay on its page, and room on each page for the step UPDATEs to stay there.

- The plain indexes Django makes for ``organization_id`` and ``agent_id`` are dropped: the
  (organization, -created_at) and (agent, -created_at) indexes lead with the same column.
- The index on ``status`` alone (and its ``varchar_pattern_ops`` twin, for LIKE, which no
  query uses) is dropped: most rows are ended runs, and the lookups by status are by
  organization (``exec_org_status``) or of the live statuses, which partial indexes serve
  (``exec_running_lease``, ``exec_waiting_until`` and ``exec_pending_created``, added here).
- fillfactor 80: a page keeps a fifth free, so a step's UPDATE (counters, actions; no indexed
  column) can write the row's new version on the same page (a HOT update, no index entries).
  It applies to pages written from now on; existing ones are not rewritten.

Indexes are built and dropped CONCURRENTLY (no write lock), so this runs beside the previous
release, which never names these indexes.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q

TABLE = "executions_execution"


def _drop(*indexes: tuple[str, str]) -> migrations.RunSQL:
    """DROP INDEX CONCURRENTLY each (name, definition); the reverse builds them again."""
    return migrations.RunSQL(
        sql=[f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"' for name, _ in indexes],
        reverse_sql=[f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{TABLE}" {how}' for name, how in indexes],
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("executions", "0012_agent_run_window")]

    operations = [
        AddIndexConcurrently(
            model_name="execution",
            index=models.Index(fields=["created_at"], name="exec_pending_created", condition=Q(status="pending")),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[_drop(("executions_execution_organization_id_2c7301da", '("organization_id")'))],
            state_operations=[
                migrations.AlterField(
                    model_name="execution",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="executions",
                        to="accounts.organization",
                    ),
                )
            ],
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[_drop(("executions_execution_agent_id_bdc25db6", '("agent_id")'))],
            state_operations=[
                migrations.AlterField(
                    model_name="execution",
                    name="agent",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="executions",
                        to="agents.agent",
                    ),
                )
            ],
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                _drop(
                    ("executions_execution_status_6db5c3b6", '("status")'),
                    ("executions_execution_status_6db5c3b6_like", '("status" varchar_pattern_ops)'),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="execution",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("waiting", "Waiting"),
                            ("waiting_approval", "Waiting Approval"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                            ("timed_out", "Timed Out"),
                        ],
                        default="pending",
                        max_length=20,
                    ),
                )
            ],
        ),
        migrations.RunSQL(
            sql=f'ALTER TABLE "{TABLE}" SET (fillfactor = 80)',
            reverse_sql=f'ALTER TABLE "{TABLE}" RESET (fillfactor)',
        ),
    ]
