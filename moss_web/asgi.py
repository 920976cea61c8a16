import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from moss_web.websocket_failures import WebsocketFailures  # noqa: E402
from sessions_app.embedding_worker import embedding_worker_start  # noqa: E402
from sessions_app.routing import websocket_urlpatterns  # noqa: E402

# Loads the model now, so no request pays for it, and keeps retrying if it is unavailable.
embedding_worker_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketFailures(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
