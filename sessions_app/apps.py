from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the receivers that tell every server process a key changed.
        # Django's deploy checks, aware of the event-loop middleware.
        from moss_web import checks  # noqa: F401
        from sessions_app import api_key_cache  # noqa: F401
