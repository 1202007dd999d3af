"""The notification socket, written as a Chanx user writes a consumer."""

from chanx.channels.websocket import AsyncJsonWebsocketConsumer
from chanx.core.decorators import event_handler, ws_handler
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage

from . import switches
from .auth import NotificationAuthenticator
from .messages import (
    CloseEvent,
    EchoMessage,
    EchoReplyMessage,
    NotificationMessage,
    NotifyEvent,
)

#: Every authenticated socket joins this group: a push without a username.
EVERYONE = "notifications"


def user_group(user_id: int) -> str:
    """The group of one user's sockets."""
    return f"user.{user_id}"


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/notifications/``: notifications pushed to a user, ping and echo."""

    authenticator_class = NotificationAuthenticator
    authenticator: NotificationAuthenticator
    groups = [EVERYONE]

    async def post_authentication(self) -> None:
        """Join the user's own group, so a push can target one user."""
        user = self.authenticator.user
        assert user is not None
        await self.join_group(user_group(user.pk))

    @ws_handler(summary="Keepalive: a ping is answered with a pong")
    async def handle_ping(self, message: PingMessage) -> PongMessage | None:
        user = self.authenticator.user
        if switches.pongs_withheld(user.get_username()):
            return None
        return PongMessage()

    @ws_handler(summary="Say the text back")
    async def handle_echo(self, message: EchoMessage) -> EchoReplyMessage:
        return EchoReplyMessage(payload=message.payload)

    @event_handler
    async def handle_notify(self, event: NotifyEvent) -> NotificationMessage:
        return NotificationMessage(payload=event.payload)

    @event_handler
    async def handle_close_socket(self, event: CloseEvent) -> None:
        await self.close(event.payload)
