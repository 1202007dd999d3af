"""How a socket is authenticated: DRF's token authentication, run by Chanx.

Chanx's ``DjangoAuthenticator`` turns the socket's ASGI scope into a Django
request (its headers and cookies, not its query string) and runs the DRF
authentication and permission classes on it, as for a REST view. Its result is
sent to the client as an ``authentication`` frame; a failure then closes the
socket with 4000 + the HTTP status (4401, 4403, 4503, ...).

Browsers cannot set headers on a WebSocket, so the token comes either in the
query string (``?token=KEY``, moved into an ``Authorization: Token KEY``
header by :class:`QueryTokenMiddleware`) or in the ``token`` cookie
(:class:`CookieTokenAuthentication`).
"""

from typing import Any
from urllib.parse import parse_qs

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission, IsAuthenticated

from chanx.channels.authenticator import DjangoAuthenticator

from . import switches

#: The cookie that carries the token in cookie mode.
TOKEN_COOKIE = "token"

#: Users in this group may sign in but not open the notification socket (403).
FORBIDDEN_GROUP = "no-notifications"


class QueryTokenMiddleware:
    """ASGI middleware: a ``?token=KEY`` becomes ``Authorization: Token KEY``.

    A header the client did send wins; the query string is left as it is.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            token = (query.get("token") or [None])[0]
            headers = list(scope.get("headers", []))
            if token and not any(name == b"authorization" for name, _ in headers):
                headers.append((b"authorization", f"Token {token}".encode("latin-1")))
                scope = dict(scope, headers=headers)
        return await self.inner(scope, receive, send)


class CookieTokenAuthentication(TokenAuthentication):
    """DRF token authentication that reads the key from the ``token`` cookie."""

    def authenticate(self, request: Any) -> Any:
        key = request.COOKIES.get(TOKEN_COOKIE)
        if not key:
            return None
        return self.authenticate_credentials(key)


class ServiceUnavailable(APIException):
    """The authentication backend is down (the ``/test/outage`` switch)."""

    status_code = 503
    default_detail = "Authentication is temporarily unavailable."
    default_code = "service_unavailable"


class AuthBackendUp(BasePermission):
    """Fails every socket with 503 while the outage switch is on."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if switches.auth_outage:
            raise ServiceUnavailable()
        return True


class MayReceiveNotifications(BasePermission):
    """Denies (403) users in the ``no-notifications`` group."""

    message = "You may not receive notifications."

    def has_permission(self, request: Any, view: Any) -> bool:
        return not request.user.groups.filter(name=FORBIDDEN_GROUP).exists()


class NotificationAuthenticator(DjangoAuthenticator):
    """The notification socket's authenticator: a token, then two permissions."""

    authentication_classes = [TokenAuthentication, CookieTokenAuthentication]
    permission_classes = [AuthBackendUp, IsAuthenticated, MayReceiveNotifications]
