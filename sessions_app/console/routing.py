from django.urls import path

from sessions_app.console import consumers

websocket_urlpatterns = [
    path("ws/console/", consumers.ConsoleConsumer.as_asgi()),
]
