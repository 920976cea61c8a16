from django.db import migrations, models


def turns_extract(apps, schema_editor):
    """Turns stored before this field get the brief's facts and commitments now."""
    from sessions_app.services.brief_extract import turn_extract

    Turn = apps.get_model("sessions_app", "Turn")
    turns = Turn.objects.filter(extracted__isnull=True).only("id", "text").order_by("id")
    while pending := list(turns[:1000]):
        for turn in pending:
            turn.extracted = turn_extract(turn.text)
        Turn.objects.bulk_update(pending, ["extracted"])


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0007_scale_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="turn",
            name="extracted",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(turns_extract, migrations.RunPython.noop, elidable=True),
    ]
