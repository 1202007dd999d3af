"""The notification socket's typed messages (Chanx ``BaseMessage``s)."""

from typing import Literal

from pydantic import BaseModel, Field

from chanx.messages.base import BaseMessage


class EchoPayload(BaseModel):
    """What the client asks the server to say back."""

    text: str = Field(max_length=10_000)


class EchoMessage(BaseMessage):
    """Client → server: ``{"action":"echo","payload":{"text":"..."}}``."""

    action: Literal["echo"] = "echo"
    payload: EchoPayload


class EchoReplyMessage(BaseMessage):
    """Server → client, the answer to an ``echo``: the same text back."""

    action: Literal["echo_reply"] = "echo_reply"
    payload: EchoPayload


class NotificationPayload(BaseModel):
    """One notification."""

    id: int
    title: str = Field(max_length=200)
    body: str = Field(max_length=10_000)


class NotificationMessage(BaseMessage):
    """Server → client, pushed: ``{"action":"notification","payload":{...}}``."""

    action: Literal["notification"] = "notification"
    payload: NotificationPayload


class NotifyEvent(BaseMessage):
    """Channel-layer event (server → consumer): push this notification."""

    action: Literal["notify"] = "notify"
    payload: NotificationPayload


class CloseEvent(BaseMessage):
    """Channel-layer event (server → consumer): close the socket with this code."""

    action: Literal["close_socket"] = "close_socket"
    payload: int
