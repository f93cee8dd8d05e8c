"""Organization, Membership, ApiToken and ActivityLog now belong to accounts (issue #15).

State only: the rows and tables stay where they are (accounts' models keep the table names);
every app's foreign keys were re-pointed at accounts first (the dependencies below), so the
models can leave billing's state. No SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('agents', '0009_organization_in_accounts'),
        ('approvals', '0002_organization_in_accounts'),
        ('billing', '0005_apitoken_parent'),
        ('executions', '0007_organization_in_accounts'),
        ('memory', '0003_organization_in_accounts'),
        ('tools', '0005_organization_in_accounts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='apitoken',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='apitoken',
                    name='parent',
                ),
                migrations.RemoveField(
                    model_name='apitoken',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='organization',
                    name='plan',
                ),
                migrations.AlterField(
                    model_name='usageperiod',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_periods', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='usagerecord',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_records', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='dailyusage',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='daily_usage', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='alert',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='accounts.organization'),
                ),
                migrations.DeleteModel(
                    name='ActivityLog',
                ),
                migrations.DeleteModel(
                    name='ApiToken',
                ),
                migrations.DeleteModel(
                    name='Membership',
                ),
                migrations.DeleteModel(
                    name='Organization',
                ),
            ],
        ),
    ]
