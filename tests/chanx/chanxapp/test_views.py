"""Dev-only HTTP routes under /test/ that tests use (on with CHANX_TEST_ROUTES=1).

Every route takes and returns JSON, answers bad input with 400 and
``{"error": "..."}``, and allows any origin (CORS), so that a browser test
served from another port can call it.
"""

import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rest_framework.authtoken.models import Token

from asgiref.sync import sync_to_async

from . import switches
from .auth import FORBIDDEN_GROUP
from .consumers import EVERYONE, NotificationConsumer, user_group
from .messages import CloseEvent, NotificationPayload, NotifyEvent

_notification_ids = itertools.count(1)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenBody(_Body):
    username: str | None = Field(default=None, min_length=1, max_length=150)
    forbidden: bool = False


class PushBody(_Body):
    username: str | None = None
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=10_000)


class PongsBody(_Body):
    username: str | None = None
    withhold: bool


class OutageBody(_Body):
    on: bool


class CloseBody(_Body):
    username: str | None = None
    code: int = Field(ge=1000, le=4999)


def _cors(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "content-type"
    return response


def _error(status: int, message: str) -> HttpResponse:
    return _cors(JsonResponse({"error": message}, status=status))


def route(
    model: type[_Body],
) -> Callable[[Callable[[Any], Awaitable[HttpResponse]]], Any]:
    """A POST route whose JSON body is validated as ``model``."""

    def wrap(handler: Callable[[Any], Awaitable[HttpResponse]]) -> Any:
        @csrf_exempt
        async def view(request: HttpRequest) -> HttpResponse:
            if request.method == "OPTIONS":
                return _cors(HttpResponse(status=204))
            if request.method != "POST":
                return _error(405, "use POST")
            try:
                raw = json.loads(request.body or b"{}")
                body = model.model_validate(raw)
            except json.JSONDecodeError as e:
                return _error(400, f"the body is not JSON: {e}")
            except ValidationError as e:
                return _error(400, "; ".join(
                    f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"
                    for err in e.errors()
                ))
            return _cors(await handler(body))

        return view

    return wrap


async def _group_of(username: str | None) -> str | None:
    """The group to reach: one user's, everyone's, or None for an unknown user."""
    if username is None:
        return EVERYONE
    user = await User.objects.filter(username=username).afirst()
    return None if user is None else user_group(user.pk)


@sync_to_async
def _new_user(body: TokenBody) -> tuple[User, Token] | None:
    username = body.username or f"user-{secrets.token_hex(4)}"
    if User.objects.filter(username=username).exists():
        return None
    user = User.objects.create_user(username=username)
    if body.forbidden:
        group, _ = Group.objects.get_or_create(name=FORBIDDEN_GROUP)
        user.groups.add(group)
    return user, Token.objects.create(user=user)


@route(TokenBody)
async def token(body: TokenBody) -> HttpResponse:
    """A new user and its DRF token: ``{"username", "user_id", "token"}``."""
    made = await _new_user(body)
    if made is None:
        return JsonResponse({"error": f"user {body.username!r} exists"}, status=409)
    user, tok = made
    return JsonResponse(
        {"username": user.username, "user_id": user.pk, "token": tok.key}, status=201
    )


@route(PushBody)
async def push(body: PushBody) -> HttpResponse:
    """Push a notification to one user's sockets (or everyone's)."""
    group = await _group_of(body.username)
    if group is None:
        return JsonResponse({"error": f"no user {body.username!r}"}, status=404)
    payload = NotificationPayload(id=next(_notification_ids), title=body.title, body=body.body)
    await NotificationConsumer.broadcast_event(NotifyEvent(payload=payload), group)
    return JsonResponse({"id": payload.id, "group": group}, status=202)


@route(PongsBody)
async def pongs(body: PongsBody) -> HttpResponse:
    """Withhold (or answer again) the pongs of one user, or of everyone."""
    if body.withhold:
        switches.withheld_pongs.add(body.username)
    elif body.username is None:
        switches.withheld_pongs.clear()
    else:
        switches.withheld_pongs.discard(body.username)
    return JsonResponse({"withheld": sorted(u or "*" for u in switches.withheld_pongs)})


@route(OutageBody)
async def outage(body: OutageBody) -> HttpResponse:
    """While on, every new socket's authentication answers 503 (close 4503)."""
    switches.auth_outage = body.on
    return JsonResponse({"on": switches.auth_outage})


@route(CloseBody)
async def close(body: CloseBody) -> HttpResponse:
    """Close one user's sockets (or everyone's) from the server with a code."""
    group = await _group_of(body.username)
    if group is None:
        return JsonResponse({"error": f"no user {body.username!r}"}, status=404)
    await NotificationConsumer.broadcast_event(CloseEvent(payload=body.code), group)
    return JsonResponse({"code": body.code, "group": group}, status=202)
