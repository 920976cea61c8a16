"""Websocket consumers: the console's live updates."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer


class ConsoleConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close()
