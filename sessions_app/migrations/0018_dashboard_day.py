import django.db.models.deletion
from django.db import migrations, models

# Keeps DashboardDay honest whatever writes the handoffs (services, admin, SQL): any
# insert, update or delete of a handoff deletes its project's rows for the UTC days it
# was made and claimed on, so the dashboard computes them again from the handoffs.
#
# The shared advisory lock, held to the end of the writing transaction, keeps a
# dashboard from storing a day while a change to it is uncommitted: the dashboard takes
# the same key exclusively, without waiting, and stores nothing when it cannot
# (services/dashboard_days.py, `_days_lock`). Writers share the lock, so they never wait
# on each other; they wait only for a dashboard that is storing that day (a few ms).
# Today is never stored, so most writes find no row to delete.
#
# Keys: (project, days since 1900-01-01) for a day; (project, -1) for all of a project's
# days. A transaction's first 64 handoff dates written lock days; later ones lock
# the project instead, so that one touching handoffs of thousands of days (a data
# migration, an import) holds a bounded number of locks and no dashboard of that project
# stores a day until it ends.
DASHBOARD_DAY_TRIGGER = """
CREATE FUNCTION sessions_app_dashboard_day_forget(for_project bigint, at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    at_day date := (at AT TIME ZONE 'UTC')::date;
    day_keys int;
BEGIN
    IF at IS NULL OR for_project IS NULL THEN
        RETURN;
    END IF;
    day_keys := COALESCE(NULLIF(current_setting('moss.dashboard_day_keys', true), ''), '0')::int;
    IF day_keys < 64 THEN
        PERFORM set_config('moss.dashboard_day_keys', (day_keys + 1)::text, true);
        PERFORM pg_advisory_xact_lock_shared(
            (for_project % 2147483647)::int, at_day - date '1900-01-01');
    ELSE
        PERFORM pg_advisory_xact_lock_shared((for_project % 2147483647)::int, -1);
    END IF;
    DELETE FROM sessions_app_dashboardday d WHERE d.project_id = for_project AND d.day = at_day;
END $$;

CREATE FUNCTION sessions_app_handoff_dashboard_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM sessions_app_dashboard_day_forget(OLD.project_id, OLD.created_at);
        PERFORM sessions_app_dashboard_day_forget(OLD.project_id, OLD.claimed_at);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM sessions_app_dashboard_day_forget(NEW.project_id, NEW.created_at);
        PERFORM sessions_app_dashboard_day_forget(NEW.project_id, NEW.claimed_at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER handoff_dashboard_days
AFTER INSERT OR UPDATE OR DELETE ON sessions_app_handoff
FOR EACH ROW EXECUTE FUNCTION sessions_app_handoff_dashboard_days();
"""
DASHBOARD_DAY_TRIGGER_DROP = """
DROP TRIGGER IF EXISTS handoff_dashboard_days ON sessions_app_handoff;
DROP FUNCTION IF EXISTS sessions_app_handoff_dashboard_days();
DROP FUNCTION IF EXISTS sessions_app_dashboard_day_forget(bigint, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0017_handoff_episode_started_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="DashboardDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("figures", models.JSONField()),
                ("computed_at", models.DateTimeField(auto_now=True)),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="sessions_app.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("project", "day"), name="dashboard_day_unique")
                ],
            },
        ),
        migrations.RunSQL(DASHBOARD_DAY_TRIGGER, DASHBOARD_DAY_TRIGGER_DROP),
    ]
