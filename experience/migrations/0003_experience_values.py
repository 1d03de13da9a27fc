"""The five experience values are reference data every installation needs."""

from django.db import migrations

CODES = ["deal", "convenience", "fun", "reassurance", "empathy"]


def create_values(apps, schema_editor):
    ExperienceValue = apps.get_model("experience", "ExperienceValue")
    for position, code in enumerate(CODES, start=1):
        ExperienceValue.objects.update_or_create(code=code, defaults={"position": position})


class Migration(migrations.Migration):
    dependencies = [("experience", "0002_initial")]

    operations = [migrations.RunPython(create_values, migrations.RunPython.noop)]
