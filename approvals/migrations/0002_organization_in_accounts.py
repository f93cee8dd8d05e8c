"""Foreign keys to the organization (and API token) now name accounts' models (issue #15).

State only: the tables they point at are the same ones (accounts keeps billing's table names),
so the columns and constraints stay as they are and no SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('approvals', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='approvalrequest',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='approvals', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='riskrule',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='risk_rules', to='accounts.organization'),
                ),
            ],
        ),
    ]
