"""sessions_app_session.search_version: bumped by Postgres whenever a session's stored
turns change in place (UPDATE or DELETE), so that each server process can tell whether
its in-process search index of the session (services/search_index.py) is still true.

Appends need no bump: a new turn has a sequence number above the index's last one.
The column is kept out of the ORM's model state on purpose: only the trigger writes it,
so no `Session.save()` of a stale instance can ever set it back.
"""

from django.db import migrations

FORWARD = """
ALTER TABLE sessions_app_session ADD COLUMN search_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION sessions_app_turn_search_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions_app_session SET search_version = search_version + 1
    WHERE id IN (SELECT DISTINCT session_id FROM changed);
    RETURN NULL;
END
$$;

-- A trigger with a transition table takes one event; both share the function.
CREATE TRIGGER turn_search_updated AFTER UPDATE ON sessions_app_turn
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_app_turn_search_changed();
CREATE TRIGGER turn_search_deleted AFTER DELETE ON sessions_app_turn
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_app_turn_search_changed();
"""

BACKWARD = """
DROP TRIGGER turn_search_deleted ON sessions_app_turn;
DROP TRIGGER turn_search_updated ON sessions_app_turn;
DROP FUNCTION sessions_app_turn_search_changed();
ALTER TABLE sessions_app_session DROP COLUMN search_version;
"""


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0013_handoff_channels")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
