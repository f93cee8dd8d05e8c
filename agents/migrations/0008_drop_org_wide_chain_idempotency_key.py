# Security issue #14 (M1): the organization-wide unique Idempotency-Key index made one
# person's key answer another's request, so it goes (a contraction, listed with its reason in
# tests/config/test_migration_policy.py). It only relaxes a rule: the previous release still
# finds a repeated key by its lookup; while both releases serve, it loses only the race guard
# between two simultaneous requests with one key. Dropped CONCURRENTLY: no lock on the table.

from django.db import migrations, models

DROP = 'DROP INDEX CONCURRENTLY IF EXISTS "chainexec_idempotency_key"'
CREATE = (
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "chainexec_idempotency_key" ON "agents_chainexecution" ("organization_id", "idempotency_key") '
    'WHERE "idempotency_key" IS NOT NULL'
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('agents', '0007_chainexecution_idempotency_caller'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP, reverse_sql=CREATE)],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name='chainexecution',
                    name='chainexec_idempotency_key',
                ),
            ],
        ),
    ]
