"""The ASGI application that daphne serves: HTTP to Django, WebSockets to Chanx."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chanxapp.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402

from .auth import QueryTokenMiddleware  # noqa: E402
from .routing import router  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": AllowedHostsOriginValidator(
            CookieMiddleware(QueryTokenMiddleware(URLRouter(router)))
        ),
    }
)
