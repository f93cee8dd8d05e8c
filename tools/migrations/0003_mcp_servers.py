# Issue #17: organizations' and the platform's MCP servers; their tools are Tool rows.
# Expand-only: a new table, a nullable column on tools_tool whose index is built CONCURRENTLY
# (not atomic, so the table stays writable meanwhile). The new handler type's choice is 0004.

import config.crypto
import django.db.models.deletion
import uuid
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('billing', '0005_apitoken_parent'),
        ('tools', '0002_tool_untrusted_output'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='McpServer',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=32)),
                ('description', models.TextField(blank=True)),
                ('transport', models.CharField(choices=[('streamable_http', 'Streamable HTTP'), ('sse', 'HTTP with SSE (legacy)'), ('stdio', 'Local process over stdio (platform servers only)')], default='streamable_http', max_length=16)),
                ('url', models.CharField(blank=True, max_length=2000)),
                ('headers', config.crypto.EncryptedTextField(blank=True, default='')),
                ('command', models.CharField(blank=True, max_length=500)),
                ('args', models.JSONField(blank=True, default=list)),
                ('env', config.crypto.EncryptedTextField(blank=True, default='')),
                ('from_setting', models.BooleanField(db_default=False, default=False)),
                ('shared_with_all', models.BooleanField(db_default=False, default=False)),
                ('untrusted_output', models.BooleanField(db_default=True, default=True)),
                ('timeout_seconds', models.PositiveSmallIntegerField(db_default=30, default=30)),
                ('is_active', models.BooleanField(default=True)),
                ('tools', models.JSONField(blank=True, default=list)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('ok', 'Ok'), ('error', 'Error')], default='pending', max_length=8)),
                ('last_error', models.TextField(blank=True)),
                ('last_synced_at', models.DateTimeField(blank=True, null=True)),
                ('sync_requested_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='mcp_servers', to='billing.organization')),
                ('shared_with', models.ManyToManyField(blank=True, related_name='+', to='billing.organization')),
            ],
            options={
                'verbose_name': 'MCP server',
                'ordering': ['name'],
            },
        ),
        migrations.AddField(
            model_name='tool',
            name='mcp_server',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tool_rows', to='tools.mcpserver'),
        ),
        AddIndexConcurrently(
            model_name='tool',
            index=models.Index(fields=['mcp_server'], name='tool_mcp_server'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('organization__isnull', True)), fields=('name',), name='mcp_server_platform_name'),
        ),
        migrations.AddConstraint(
            model_name='mcpserver',
            constraint=models.UniqueConstraint(condition=models.Q(('organization__isnull', False)), fields=('organization', 'name'), name='mcp_server_org_name'),
        ),
    ]
