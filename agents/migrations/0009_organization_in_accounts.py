"""Foreign keys to the organization (and API token) now name accounts' models (issue #15).

State only: the tables they point at are the same ones (accounts keeps billing's table names),
so the columns and constraints stay as they are and no SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('agents', '0008_drop_org_wide_chain_idempotency_key'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='agent',
                    name='organization',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='agents', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='agentchain',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chains', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='agentconfiguration',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='agent_configurations', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='chainexecution',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='providerconnection',
                    name='organization',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='provider_connections', to='accounts.organization'),
                ),
            ],
        ),
    ]
