"""WebSocket routes."""

from chanx.channels.routing import path

from .consumers import NotificationConsumer

router = [path("ws/notifications/", NotificationConsumer.as_asgi())]
