from django.db import migrations, models

# Each escalation and resolution gets the start of its human episode, as the dashboard
# computed it per resolution: handoffs are grouped by how many resolutions and hand-backs
# to a bot came before them in their session; a group that begins with an escalation
# began an episode at that escalation's time. One pass over the handoffs.
HANDOFF_EPISODES_FILL = """
UPDATE sessions_app_handoff h SET episode_started_at = e.started
FROM (
    SELECT id, to_kind,
           CASE WHEN first_value(to_kind) OVER w IN ('humans', 'team', 'user')
                THEN first_value(created_at) OVER w END AS started
    FROM (
        SELECT id, session_id, version, to_kind, created_at,
               COALESCE(sum(CASE WHEN to_kind IN ('resolved', 'bot') THEN 1 ELSE 0 END) OVER (
                   PARTITION BY session_id ORDER BY version
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS episode
        FROM sessions_app_handoff
    ) g
    WINDOW w AS (PARTITION BY session_id, episode ORDER BY version)
) e
WHERE e.id = h.id AND e.to_kind IN ('humans', 'team', 'user', 'resolved')
  AND h.episode_started_at IS DISTINCT FROM e.started;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('sessions_app', '0016_turn_search_signals'),
    ]

    operations = [
        migrations.AddField(
            model_name='handoff',
            name='episode_started_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(HANDOFF_EPISODES_FILL, migrations.RunSQL.noop),
    ]
