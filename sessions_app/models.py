"""The domain: projects (tenants), their sessions, turns, handoffs and audit log."""

from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.fields.json import KeyTransform
from pgvector import Vector
from pgvector.django import VectorField


class StoredVector(Vector):
    """A vector to write to a VectorField, each value sent in 9 significant digits, which give
    back the same float32: pgvector's own text has up to 17, about 8 KB a vector against 5,
    formatted in twice the time. Storing 250 turns' two vectors took 167-192 ms that way,
    112-153 ms this way."""

    def to_text(self) -> str:
        values = self.to_list()
        # One %-format of the whole tuple: a third faster than a format call a value.
        return "[" + _vector_format(len(values)) % tuple(values) + "]"


@functools.cache
def _vector_format(dimensions: int) -> str:
    return ",".join(["%.9g"] * dimensions)


def _public_id() -> str:
    return f"proj_{uuid.uuid4().hex[:20]}"


class Project(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_public_id, editable=False)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # The last event cursor issued. Incremented under the row lock in the same
    # transaction as each event, so cursors are issued in commit order.
    event_cursor = models.PositiveBigIntegerField(default=0, editable=False)
    # Every turn channel ever written in the project (services/channels.py), for
    # the supervisor's filter: reading it beats a DISTINCT over every turn.
    channels = ArrayField(models.TextField(), default=list, blank=True, editable=False)
    # Service levels the console's inbox colours rows by; 0 turns a threshold off.
    sla_waiting_warn_seconds = models.PositiveIntegerField(
        "waiting: warn after (seconds)", default=120
    )
    sla_waiting_breach_seconds = models.PositiveIntegerField(
        "waiting: breached after (seconds)", default=300
    )
    sla_handling_warn_seconds = models.PositiveIntegerField(
        "handling: warn after (seconds)", default=900
    )
    sla_handling_breach_seconds = models.PositiveIntegerField(
        "handling: breached after (seconds)", default=1800
    )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for stage in ("waiting", "handling"):
            warn = getattr(self, f"sla_{stage}_warn_seconds")
            breach = getattr(self, f"sla_{stage}_breach_seconds")
            if warn and breach and warn > breach:
                raise ValidationError(
                    {f"sla_{stage}_warn_seconds": f"{stage}: warn at or before the breach"}
                )


class ApiKey(models.Model):
    """A project key. Only its SHA-256 is stored: keys are long random tokens."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, help_text="The first characters, to tell keys apart")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label or 'key'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.AGENT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Team(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class SessionStatus(models.TextChoices):
    BOT = "bot", "With a bot"
    WAITING = "waiting", "Waiting for a human"
    HELD = "held", "Held by a human"
    RESOLVED = "resolved", "Resolved"


class Session(models.Model):
    """A named, persistent conversation thread. The name is the agents' shared key."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    name = models.CharField(max_length=128)
    model_id = models.CharField(max_length=100)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=SessionStatus.choices, default=SessionStatus.BOT
    )
    # Who has it now: a bot (holder_label names it) or a user.
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="held_sessions",
    )
    holder_label = models.CharField(max_length=200, blank=True)
    # Where a waiting escalation is routed: anyone, a team, or a named user.
    queue_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    queue_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    waiting_since = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Incremented at every handoff")
    last_handoff = models.ForeignKey(
        "Handoff", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    doc_count = models.PositiveIntegerField(default=0)
    last_seq = models.PositiveBigIntegerField(default=0, help_text="Last sequence number issued")
    # The channels of its turns, ever (kept on write): the channel filter reads this.
    channels = ArrayField(models.TextField(), default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="session_unique_name")
        ]
        indexes = [
            models.Index(fields=["project", "status", "waiting_since"]),
            models.Index(fields=["project", "-updated_at"]),
            # The API's status list (newest first) and the supervisor's (by activity).
            models.Index(fields=["project", "status", "-id"], name="session_status_id"),
            models.Index(
                fields=["project", "status", "-updated_at"], name="session_status_updated"
            ),
            # A customer's sessions: the customer query and list filters.
            models.Index(
                F("project"), KeyTransform("customer_id", "metadata"), name="session_customer"
            ),
            # The API's list without a status (newest first), and by name prefix: LIKE
            # 'p%' uses a B-tree only with pattern ops under a C.UTF-8 or ICU collation.
            models.Index(fields=["project", "-id"], name="session_project_id"),
            models.Index(
                fields=["project", "name"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="session_prefix",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Turn(models.Model):
    """One turn of a session (the SDK's document), with its embedding."""

    # No index of its own: the unique (session, seq) and (session, doc_id) lead with it.
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="turns", db_index=False
    )
    doc_id = models.CharField(max_length=128)
    seq = models.PositiveBigIntegerField()
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    # NULL while pending: stored when the model was unavailable, embedded by a
    # backfill (services/backfill.py) once it is back.
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    # The turn with its speaker and the turn before it (sessions_app/context_windows.py).
    # NULL for client-supplied embeddings, and while pending like `embedding`.
    context_embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    model_id = models.CharField(max_length=100)
    # What the handoff brief reads from the text (services/brief_extract.turn_extract),
    # computed when the text is stored: {"facts": [[kind, value, key], ...], "commitment":
    # {"text", "topics"}}, {} when there is neither, NULL when not extracted yet.
    extracted = models.JSONField(null=True, blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # Who stored the current text, as the server saw it: role and author in the
    # metadata are whatever the writer claimed. A turn written through an API key
    # is marked as such wherever a human reads it; the prefix outlives the key.
    written_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    written_by_key_prefix = models.CharField(max_length=16, blank=True)
    written_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # A private note of the humans working the session: shown in the console and
    # the timeline, left out of what bots read, search and receive (README,
    # "Private notes").
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "doc_id"], name="turn_unique_doc_id"),
            models.UniqueConstraint(fields=["session", "seq"], name="turn_unique_seq"),
        ]
        indexes = [
            models.Index(fields=["session", "created_at"]),
            models.Index(
                fields=["id"],
                condition=models.Q(embedding__isnull=True),
                name="turn_embedding_pending",
            ),
            models.Index(
                fields=["id"],
                condition=models.Q(context_embedding__isnull=True) & ~models.Q(model_id="client"),
                name="turn_context_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session.name}#{self.seq} {self.doc_id}"

    @property
    def embedding_pending(self) -> bool:
        return self.embedding is None

    @property
    def written_by(self) -> str:
        """The writer in words, for exports and the admin: "API key <prefix>", "user <name>"."""
        if self.written_by_key_prefix:
            return f"API key {self.written_by_key_prefix}"
        if self.written_by_user_id is not None and self.written_by_user is not None:
            return f"user {self.written_by_user.get_username()}"
        return ""


class CannedResponse(models.Model):
    """A project's reply snippet, inserted with `/` in the console's reply box.

    `{{ key }}` placeholders are filled from the session's metadata
    (services/canned.py); the text is plain text, never markup.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="canned_responses")
    shortcut = models.SlugField(max_length=50, help_text="Typed after / to find it, e.g. refund")
    title = models.CharField(max_length=200)
    text = models.TextField(help_text="Placeholders such as {{customer_name}} come from metadata")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "shortcut"], name="canned_unique_shortcut")
        ]
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class SessionSeen(models.Model):
    """How far a user has read a session in the console: customer turns after `seq` are unread."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="seen_marks")
    seq = models.PositiveBigIntegerField(default=0)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "session"], name="session_seen_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} saw {self.session_id} to #{self.seq}"


class Presence(models.Model):
    """A user's console heartbeat: any open console tab beats; `active_at` only while used."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="presence",
    )
    beat_at = models.DateTimeField()
    active_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id} beat at {self.beat_at:%H:%M:%S}"


class HandoffTarget(models.TextChoices):
    BOT = "bot", "A bot"
    HUMANS = "humans", "The human queue"
    TEAM = "team", "A team"
    USER = "user", "A named specialist"
    RESOLVED = "resolved", "Resolved"


class Handoff(models.Model):
    """A handoff point (`push_index`): who handed the session to whom, and why."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="handoffs")
    # The session's project, kept on the handoff so a project's handoffs over a time window
    # are one index range (the dashboard), not a join through every session of the table.
    # Indexed by the (project, ...) indexes below.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="handoffs", db_index=False
    )
    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.PositiveIntegerField()
    doc_count = models.PositiveIntegerField()
    last_seq = models.PositiveBigIntegerField()
    from_agent = models.CharField(max_length=200, blank=True)
    from_channel = models.CharField(max_length=50, blank=True)
    to_kind = models.CharField(max_length=20, choices=HandoffTarget.choices)
    # The channels around the handoff point, kept on write for the dashboard's
    # channel pairs: of the last turn at it ("" none), and of the first turn
    # after it (None until one is written, "" when that turn has no channel).
    channel_before = models.CharField(max_length=200, blank=True, editable=False)
    channel_after = models.CharField(  # noqa: DJ001 (None: no turn yet; "": one without)
        max_length=200, null=True, blank=True, editable=False
    )
    to_target = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # On an escalation or a resolution: when the human episode it belongs to began (the
    # created_at of its first escalation since the session was last with a bot or resolved;
    # None for a resolution that no escalation preceded). Kept on write so the dashboard's
    # time to resolve is a column difference, not a search through each session's handoffs.
    episode_started_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "version"], name="handoff_unique_version")
        ]
        indexes = [
            # The dashboard's windows: handoffs made, and escalations claimed, in a window.
            models.Index(fields=["project", "created_at"], name="handoff_project_created"),
            models.Index(fields=["project", "claimed_at"], name="handoff_project_claimed"),
        ]

    def __str__(self) -> str:
        return f"{self.session.name} v{self.version} → {self.to_kind} {self.to_target}"


class DashboardDay(models.Model):
    """A project's dashboard figures for one past UTC day, derived from its handoffs
    (services/dashboard_days.py). A trigger on the handoff table (migration 0018) deletes
    the row whenever a handoff made or claimed that day is written or deleted."""

    # Indexed by the unique constraint, which leads with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    figures = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "day"], name="dashboard_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day}"


class AuditEvent(models.Model):
    """Append-only: what happened to a session and who did it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit_events")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    session_name = models.CharField(max_length=128, blank=True)
    kind = models.CharField(max_length=50)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=50, blank=True)
    device = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["session", "created_at"])]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.session_name}"


class Event(models.Model):
    """The outbox: one row per change, written in the change's transaction.

    Bots read it through the long-poll stream and webhooks. `cursor` grows by
    one per project in commit order, so a reader that saw cursor N has seen
    every event before it.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    cursor = models.PositiveBigIntegerField()
    type = models.CharField(max_length=50)
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    session_name = models.CharField(max_length=128)
    # The session as the change left it: name, status, holder, version.
    session_state = models.JSONField(default=dict)
    actor_kind = models.CharField(max_length=20)
    actor_name = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "cursor"], name="event_unique_cursor")
        ]
        indexes = [models.Index(fields=["project", "session_name", "cursor"])]

    def __str__(self) -> str:
        return f"{self.type} {self.session_name} #{self.cursor}"


def _webhook_public_id() -> str:
    return f"wh_{uuid.uuid4().hex[:20]}"


class WebhookEndpoint(models.Model):
    """A receiver of the project's events, signed per Standard Webhooks.

    The worker delivers one event at a time in cursor order: `cursor` is the
    last project event cursor this endpoint is done with (delivered, or skipped
    as not among `types`), so event N+1 is sent only after N was acknowledged.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_endpoints")
    public_id = models.CharField(
        max_length=40, unique=True, default=_webhook_public_id, editable=False
    )
    url = models.URLField(max_length=2000)
    # Event types to send; empty sends every type.
    types = models.JSONField(default=list, blank=True)
    # `whsec_<base64>`: kept (it signs every delivery), shown once at creation.
    secret = models.CharField(max_length=100, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    cursor = models.PositiveBigIntegerField(default=0)
    # Retry state of the event after `cursor`: failed attempts so far, when the
    # first of them failed (the retry window counts from there), and when to retry.
    failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the worker last took this endpoint: endpoints with a backlog take turns.
    last_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "webhook endpoint"
        indexes = [models.Index(fields=["disabled_at", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None


class WebhookAttempt(models.Model):
    """One POST of one event to one endpoint: what came back and how long it took."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    # The event by value: attempts outlive the event log's retention.
    event_id = models.CharField(max_length=40)
    event_cursor = models.PositiveBigIntegerField()
    event_type = models.CharField(max_length=50)
    attempt = models.PositiveIntegerField(help_text="1 for the first try of this event")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-created_at"])]

    def __str__(self) -> str:
        outcome = self.status_code or self.error[:40]
        return f"{self.event_type} #{self.event_cursor} try {self.attempt}: {outcome}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
