import django.db.models.deletion
from django.db import migrations, models

# Each handoff takes its session's project (one pass over the handoffs).
HANDOFF_PROJECT_FILL = """
UPDATE sessions_app_handoff h SET project_id = s.project_id
FROM sessions_app_session s
WHERE s.id = h.session_id AND h.project_id IS NULL;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('sessions_app', '0014_session_search_version'),
    ]

    operations = [
        # Nullable first, filled, then required.
        migrations.AddField(
            model_name='handoff',
            name='project',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='handoffs', to='sessions_app.project'),
        ),
        migrations.RunSQL(HANDOFF_PROJECT_FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='handoff',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='handoffs', to='sessions_app.project'),
        ),
        migrations.AddIndex(
            model_name='handoff',
            index=models.Index(fields=['project', 'created_at'], name='handoff_project_created'),
        ),
        migrations.AddIndex(
            model_name='handoff',
            index=models.Index(fields=['project', 'claimed_at'], name='handoff_project_claimed'),
        ),
    ]
