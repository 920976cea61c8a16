import os
from typing import Any

import django

from moss_web.memory import heap_trim_start, malloc_tune

# Before any thread starts: their allocations then share two arenas (memory.py).
malloc_tune()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moss_web.settings")
# What django.core.asgi.get_asgi_application does, with our handler (asgi_handler.py).
django.setup(set_prefix=False)

from moss_web.asgi_handler import PooledThreadsASGIHandler  # noqa: E402

django_asgi_app = PooledThreadsASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from moss_web.websocket_failures import WebsocketFailures  # noqa: E402
from moss_web.websocket_origin import WebsocketOriginValidator  # noqa: E402
from sessions_app.api_key_cache import api_key_cache_start  # noqa: E402
from sessions_app.console.routing import websocket_urlpatterns  # noqa: E402
from sessions_app.embedding_worker import embedding_worker_start  # noqa: E402


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Server start and stop (uvicorn sends these; test communicators do not)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Loads the model now, so no request pays for it, and keeps retrying
            # while it is unavailable.
            embedding_worker_start()
            # Authenticated keys are cached while this process hears of every revocation.
            api_key_cache_start()
            heap_trim_start(every_seconds=settings.MOSS_HEAP_TRIM_SECONDS)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "lifespan": lifespan,
        "http": django_asgi_app,
        "websocket": WebsocketFailures(
            WebsocketOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
