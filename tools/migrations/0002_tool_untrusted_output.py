from django.db import migrations, models


def existing_http_tools_are_untrusted(apps, schema_editor):
    # What a new HTTP tool defaults to (tools.services.http_tool_create): an organization's
    # service answers with whatever it returns. Built-in tools get theirs from sync_tools.
    Tool = apps.get_model("tools", "Tool")
    Tool.objects.filter(organization__isnull=False, handler_type="http").update(untrusted_output=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tools", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="tool",
            name="untrusted_output",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(existing_http_tools_are_untrusted, migrations.RunPython.noop),
    ]
