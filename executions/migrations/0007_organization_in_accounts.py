"""Foreign keys to the organization (and API token) now name accounts' models (issue #15).

State only: the tables they point at are the same ones (accounts keeps billing's table names),
so the columns and constraints stay as they are and no SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('executions', '0006_trigger_type_mcp'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='agenthooksecret',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='execution',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='executions', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='execution',
                    name='triggered_by_token',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apitoken'),
                ),
                migrations.AlterField(
                    model_name='platformevent',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='scheduledexecution',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='schedules', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='triggerattempt',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='webhookdelivery',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='webhookendpoint',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_endpoints', to='accounts.organization'),
                ),
            ],
        ),
    ]
