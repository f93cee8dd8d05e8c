"""The tenant's models move here from billing (issue #15) without moving data.

State only: the tables stay ``billing_organization``, ``billing_membership``, ``billing_apitoken``
and ``billing_activitylog`` (``db_table``), with their indexes and constraints; no SQL runs.
billing.0006 removes the same models from billing's state once every app points here.
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import uuid
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0005_apitoken_parent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Organization',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('name', models.CharField(max_length=200)),
                        ('slug', models.SlugField(max_length=80, unique=True)),
                        ('is_active', models.BooleanField(default=True)),
                        ('daily_budget_usd', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('monthly_budget_usd', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('role_permissions', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('plan', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='organizations', to='billing.plan')),
                    ],
                    options={
                        'db_table': 'billing_organization',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('name', models.CharField(blank=True, max_length=100)),
                        ('prefix', models.CharField(db_index=True, max_length=16)),
                        ('token_hash', models.CharField(max_length=64, unique=True)),
                        ('scopes', models.JSONField(default=list)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('parent', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='accounts.apitoken')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'billing_apitoken',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='ActivityLog',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('agent_id', models.UUIDField(blank=True, db_index=True, null=True)),
                        ('action', models.CharField(max_length=80)),
                        ('target_type', models.CharField(blank=True, max_length=60)),
                        ('target_id', models.CharField(blank=True, max_length=64)),
                        ('request_summary', models.JSONField(blank=True, default=dict)),
                        ('response_summary', models.JSONField(blank=True, default=dict)),
                        ('status', models.CharField(choices=[('success', 'Success'), ('failure', 'Failure')], default='success', max_length=10)),
                        ('duration_ms', models.PositiveIntegerField(blank=True, null=True)),
                        ('tokens', models.PositiveIntegerField(default=0)),
                        ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=14)),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('token', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='accounts.apitoken')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activity', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'billing_activitylog',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('member', 'Member'), ('viewer', 'Viewer')], default='member', max_length=16)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'billing_membership',
                        'ordering': ['created_at'],
                        'constraints': [models.UniqueConstraint(fields=('user', 'organization'), name='uniq_membership')],
                    },
                ),
                migrations.AddIndex(
                    model_name='apitoken',
                    index=models.Index(condition=models.Q(('parent__isnull', False)), fields=['parent'], name='apitoken_parent'),
                ),
                migrations.AddIndex(
                    model_name='activitylog',
                    index=models.Index(fields=['organization', '-created_at'], name='activity_org_created'),
                ),
            ],
        ),
    ]
