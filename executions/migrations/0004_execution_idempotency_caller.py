# Security issue #14 (M1): an Idempotency-Key is the caller's, per agent.
# Expand-only: two nullable columns, and the new unique index built CONCURRENTLY (not atomic,
# so the table stays writable meanwhile; Django has no concurrent AddConstraint, hence the SQL
# with the constraint in the state). The organization-wide index goes in 0005_drop_org_wide_idempotency_key.

from django.db import migrations, models

CREATE = (
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "exec_idempotency_caller" ON "executions_execution" '
    '("organization_id", "idempotency_key", "agent_id", "idempotency_caller") WHERE "idempotency_key" IS NOT NULL'
)
DROP = 'DROP INDEX CONCURRENTLY IF EXISTS "exec_idempotency_caller"'


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('executions', '0003_triggers_webhooks'),
    ]

    operations = [
        migrations.AddField(
            model_name='execution',
            name='idempotency_caller',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name='execution',
            name='request_fingerprint',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, reverse_sql=DROP)],
            state_operations=[
                migrations.AddConstraint(
                    model_name='execution',
                    constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('organization', 'idempotency_key', 'agent', 'idempotency_caller'), name='exec_idempotency_caller'),
                ),
            ],
        ),
    ]
