from django.db import migrations


def seed(apps, schema_editor):
    from agents.template_data import TEMPLATES

    AgentTemplate = apps.get_model("agents", "AgentTemplate")
    for item in TEMPLATES:
        AgentTemplate.objects.update_or_create(
            key=item["key"],
            defaults={
                "name": item["name"],
                "agent_type": item["agent_type"],
                "description": item["description"],
                "config": item["config"],
            },
        )


def unseed(apps, schema_editor):
    from agents.template_data import TEMPLATES

    apps.get_model("agents", "AgentTemplate").objects.filter(key__in=[t["key"] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
