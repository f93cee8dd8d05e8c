"""The moved models' content types follow them from billing to accounts (issue #15).

Permissions, admin log entries and object permissions point at a content type by id, so
renaming the rows' app_label carries them along. Where accounts already has a row for a
model (a database where ``migrate`` ran the models' move before this migration existed), the
billing row is left alone rather than merged.
"""

from django.db import migrations

MOVED = ("organization", "membership", "apitoken", "activitylog")


def relabel(from_label, to_label):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        taken = set(
            ContentType.objects.using(db).filter(app_label=to_label, model__in=MOVED).values_list("model", flat=True)
        )
        ContentType.objects.using(db).filter(app_label=from_label, model__in=MOVED).exclude(model__in=taken).update(
            app_label=to_label
        )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("billing", "0006_tenant_moved_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(relabel("billing", "accounts"), relabel("accounts", "billing")),
    ]
