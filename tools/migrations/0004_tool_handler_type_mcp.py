# Issue #17: the handler type "mcp" among Tool.handler_type's choices. Choices live in Python
# only: no SQL runs (allowed in tests/config/test_migration_policy.py for that reason).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tools', '0003_mcp_servers'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tool',
            name='handler_type',
            field=models.CharField(choices=[('internal', 'Platform function'), ('module', 'Organization module endpoint'), ('external', 'External service'), ('workflow', 'Workflow or agent run'), ('http', 'Organization HTTP tool'), ('mcp', 'MCP server tool')], max_length=16),
        ),
    ]
