from django.apps import AppConfig
from threadpoolctl import threadpool_limits


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the receivers that tell every server process a key changed.
        # Django's deploy checks, aware of the event-loop middleware.
        from moss_web import checks  # noqa: F401
        from sessions_app import api_key_cache  # noqa: F401

        # migrate's first check: the database server offers pgvector.
        from sessions_app import checks as database_checks  # noqa: F401

        # One BLAS thread per call: the search index's products are sub-millisecond, and
        # OpenBLAS's own threads, spinning beside concurrent requests on a few cores,
        # made a 10k-turn product 3-15x slower (services/search_index.py).
        threadpool_limits(limits=1, user_api="blas")
