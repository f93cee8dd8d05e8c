"""Foreign keys to the organization (and API token) now name accounts' models (issue #15).

State only: the tables they point at are the same ones (accounts keeps billing's table names),
so the columns and constraints stay as they are and no SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('tools', '0004_tool_handler_type_mcp'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='agentcapabilitygrant',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='emaildraft',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='email_drafts', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='mcpserver',
                    name='organization',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='mcp_servers', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='mcpserver',
                    name='shared_with',
                    field=models.ManyToManyField(blank=True, related_name='+', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='moduleendpoint',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='module_endpoints', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='notification',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='task',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='tool',
                    name='organization',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tools', to='accounts.organization'),
                ),
                migrations.AlterField(
                    model_name='toolcall',
                    name='organization',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tool_calls', to='accounts.organization'),
                ),
            ],
        ),
    ]
