from django.db import migrations


def turns_signal(apps, schema_editor):
    """Turns extracted before search read a stated cause and a question from Turn.extracted
    get them now; turns not extracted yet (NULL) get everything from extract_pending."""
    from sessions_app.services.brief_extract import turn_signals

    Turn = apps.get_model("sessions_app", "Turn")
    turns = Turn.objects.filter(extracted__isnull=False).only("id", "text", "extracted")
    after = 0
    while batch := list(turns.filter(id__gt=after).order_by("id")[:2000]):
        changed = []
        for turn in batch:
            signals = turn_signals(turn.text)
            if any(turn.extracted.get(key) != value for key, value in signals.items()):
                turn.extracted = {**turn.extracted, **signals}
                changed.append(turn)
        Turn.objects.bulk_update(changed, ["extracted"])
        after = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0015_handoff_project"),
    ]

    operations = [
        migrations.RunPython(turns_signal, migrations.RunPython.noop, elidable=True),
    ]
