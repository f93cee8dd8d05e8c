# Security issue #14 (M1): an Idempotency-Key is the caller's, per chain.
# Expand-only: two nullable columns, and the new unique index built CONCURRENTLY (not atomic,
# so the table stays writable meanwhile; Django has no concurrent AddConstraint, hence the SQL
# with the constraint in the state). The organization-wide index goes in 0008_drop_org_wide_chain_idempotency_key.

from django.db import migrations, models

CREATE = (
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "chainexec_idempotency_caller" ON "agents_chainexecution" '
    '("organization_id", "idempotency_key", "chain_id", "idempotency_caller") WHERE "idempotency_key" IS NOT NULL'
)
DROP = 'DROP INDEX CONCURRENTLY IF EXISTS "chainexec_idempotency_caller"'


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('agents', '0006_agent_list_created_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='chainexecution',
            name='idempotency_caller',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name='chainexecution',
            name='request_fingerprint',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, reverse_sql=DROP)],
            state_operations=[
                migrations.AddConstraint(
                    model_name='chainexecution',
                    constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('organization', 'idempotency_key', 'chain', 'idempotency_caller'), name='chainexec_idempotency_caller'),
                ),
            ],
        ),
    ]
