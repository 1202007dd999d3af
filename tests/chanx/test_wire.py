"""The Chanx test server's wire format, checked over real sockets.

Run with ``scripts/chanx-server --test``: it starts the real daphne process on
a free port and passes its URL in ``CHANX_SERVER`` (and its log file in
``CHANX_LOG``). Every frame asserted here is documented in README.md.
"""

import asyncio
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SERVER = os.environ.get("CHANX_SERVER", "")
WS_URL = SERVER.replace("http://", "ws://", 1) + "/ws/notifications/"
# A browser always sends its page's origin; the server checks it.
ORIGIN = "http://127.0.0.1:8080"
# An upper bound on waiting for a frame the server must send, not a pause.
FRAME_TIMEOUT = 10

AUTH_OK = {
    "action": "authentication",
    "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}},
}

pytestmark = pytest.mark.skipif(
    not SERVER, reason="CHANX_SERVER is not set: run scripts/chanx-server --test"
)


def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST JSON to a /test/ route; returns the status and the JSON answer."""
    request = urllib.request.Request(
        SERVER + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=FRAME_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def new_user(**body: Any) -> dict[str, Any]:
    """A fresh user and token from ``POST /test/token``."""
    status, answer = post("/test/token", body)
    assert status == 201, answer
    return answer


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, which must be JSON text."""
    frame = await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT)
    assert isinstance(frame, str), frame
    return json.loads(frame)


async def closed_with(ws: ClientConnection) -> int | None:
    """Waits for the server's close frame (no data frame may come first)."""
    with pytest.raises(ConnectionClosed):
        extra = await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT)
        pytest.fail(f"a frame came instead of the close: {extra}")
    assert ws.close_code is not None
    return ws.close_code


def socket(query: str = "", **kwargs: Any) -> Any:
    return connect(WS_URL + query, origin=kwargs.pop("origin", ORIGIN), **kwargs)


async def authenticated(user: dict[str, Any]) -> ClientConnection:
    ws = await socket(f"?token={user['token']}")
    assert await recv_json(ws) == AUTH_OK
    return ws


def test_a_valid_token_in_the_query_is_authenticated_by_the_first_frame() -> None:
    async def test() -> None:
        user = new_user()
        async with socket(f"?token={user['token']}") as ws:
            assert await recv_json(ws) == AUTH_OK

    run(test)


def test_a_valid_token_in_the_cookie_is_authenticated() -> None:
    async def test() -> None:
        user = new_user()
        async with socket(additional_headers={"Cookie": f"token={user['token']}"}) as ws:
            assert await recv_json(ws) == AUTH_OK

    run(test)


def test_ping_is_answered_with_pong() -> None:
    async def test() -> None:
        ws = await authenticated(new_user())
        async with ws:
            for ping in ('{"action":"ping"}', '{"action":"ping","payload":null}'):
                await ws.send(ping)
                assert await recv_json(ws) == {"action": "pong", "payload": None}

    run(test)


def test_echo_is_answered_and_a_ref_is_carried_back() -> None:
    async def test() -> None:
        ws = await authenticated(new_user())
        async with ws:
            await ws.send('{"action":"echo","payload":{"text":"héllo ✓"}}')
            assert await recv_json(ws) == {
                "action": "echo_reply",
                "payload": {"text": "héllo ✓"},
            }
            await ws.send('{"action":"echo","payload":{"text":"x"},"ref":"m-1"}')
            assert await recv_json(ws) == {
                "action": "echo_reply",
                "payload": {"text": "x"},
                "version": 1,
                "ref": "m-1",
            }

    run(test)


def test_a_pushed_notification_reaches_its_user_and_only_them() -> None:
    async def test() -> None:
        alice, bob = new_user(), new_user()
        async with await authenticated(alice) as a, await authenticated(bob) as b:
            status, for_alice = post(
                "/test/push", {"username": alice["username"], "title": "Hi", "body": "A"}
            )
            assert status == 202, for_alice
            status, for_bob = post(
                "/test/push", {"username": bob["username"], "title": "Yo", "body": "B"}
            )
            assert status == 202, for_bob
            assert await recv_json(a) == {
                "action": "notification",
                "payload": {"id": for_alice["id"], "title": "Hi", "body": "A"},
            }
            # Bob's first frame is his own notification, not Alice's.
            assert await recv_json(b) == {
                "action": "notification",
                "payload": {"id": for_bob["id"], "title": "Yo", "body": "B"},
            }

    run(test)


def test_a_push_to_everyone_reaches_every_socket() -> None:
    async def test() -> None:
        async with await authenticated(new_user()) as a, await authenticated(new_user()) as b:
            status, pushed = post("/test/push", {"title": "All", "body": ""})
            assert status == 202 and pushed["group"] == "notifications", pushed
            want = {"action": "notification", "payload": {"id": pushed["id"], "title": "All", "body": ""}}
            assert await recv_json(a) == want
            assert await recv_json(b) == want

    run(test)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?token=not-a-token", "Invalid token."),
        ("", "Authentication credentials were not provided."),
    ],
)
def test_a_bad_or_missing_token_gets_401_then_close_4401(query: str, detail: str) -> None:
    async def test() -> None:
        async with socket(query) as ws:
            assert await recv_json(ws) == {
                "action": "authentication",
                "payload": {
                    "status_code": 401,
                    "status_text": "Unauthorized",
                    "data": {"detail": detail},
                },
            }
            assert await closed_with(ws) == 4401

    run(test)


def test_a_bad_token_in_the_cookie_gets_close_4401() -> None:
    async def test() -> None:
        async with socket(additional_headers={"Cookie": "token=stale"}) as ws:
            assert (await recv_json(ws))["payload"]["status_code"] == 401
            assert await closed_with(ws) == 4401

    run(test)


def test_the_header_beats_the_query_and_the_query_beats_the_cookie() -> None:
    async def test() -> None:
        user = new_user()
        good, bad = user["token"], "0" * 40
        # A bad query token fails even with a good cookie.
        cookie = {"Cookie": f"token={good}"}
        async with socket(f"?token={bad}", additional_headers=cookie) as ws:
            assert (await recv_json(ws))["payload"]["status_code"] == 401
            assert await closed_with(ws) == 4401
        # A good header wins over a bad query token.
        header = {"Authorization": f"Token {good}"}
        async with socket(f"?token={bad}", additional_headers=header) as ws:
            assert await recv_json(ws) == AUTH_OK

    run(test)


def test_a_forbidden_user_gets_403_then_close_4403() -> None:
    async def test() -> None:
        user = new_user(forbidden=True)
        async with socket(f"?token={user['token']}") as ws:
            assert await recv_json(ws) == {
                "action": "authentication",
                "payload": {
                    "status_code": 403,
                    "status_text": "Forbidden",
                    "data": {"detail": "You may not receive notifications."},
                },
            }
            assert await closed_with(ws) == 4403

    run(test)


def test_an_auth_outage_gets_503_then_close_4503() -> None:
    async def test() -> None:
        user = new_user()
        assert post("/test/outage", {"on": True}) == (200, {"on": True})
        try:
            async with socket(f"?token={user['token']}") as ws:
                assert (await recv_json(ws))["payload"]["status_code"] == 503
                assert await closed_with(ws) == 4503
        finally:
            assert post("/test/outage", {"on": False}) == (200, {"on": False})
        async with socket(f"?token={user['token']}") as ws:
            assert await recv_json(ws) == AUTH_OK

    run(test)


def test_withheld_pongs_go_unanswered_until_released() -> None:
    async def test() -> None:
        user, other = new_user(), new_user()
        async with await authenticated(user) as ws, await authenticated(other) as ows:
            status, _ = post("/test/pongs", {"username": user["username"], "withhold": True})
            assert status == 200
            # The ping goes first; the echo's answer is the next frame: no pong came.
            await ws.send('{"action":"ping"}')
            await ws.send('{"action":"echo","payload":{"text":"after the ping"}}')
            assert (await recv_json(ws))["action"] == "echo_reply"
            # Another user's pings are still answered.
            await ows.send('{"action":"ping"}')
            assert await recv_json(ows) == {"action": "pong", "payload": None}
            status, _ = post("/test/pongs", {"username": user["username"], "withhold": False})
            assert status == 200
            await ws.send('{"action":"ping"}')
            assert await recv_json(ws) == {"action": "pong", "payload": None}

    run(test)


def test_withholding_everyones_pongs() -> None:
    async def test() -> None:
        async with await authenticated(new_user()) as ws:
            assert post("/test/pongs", {"withhold": True}) == (200, {"withheld": ["*"]})
            try:
                await ws.send('{"action":"ping"}')
                await ws.send('{"action":"echo","payload":{"text":"t"}}')
                assert (await recv_json(ws))["action"] == "echo_reply"
            finally:
                assert post("/test/pongs", {"withhold": False}) == (200, {"withheld": []})
            await ws.send('{"action":"ping"}')
            assert await recv_json(ws) == {"action": "pong", "payload": None}

    run(test)


def test_unknown_or_malformed_frames_get_an_error_frame_and_the_socket_stays_open() -> None:
    async def test() -> None:
        async with await authenticated(new_user()) as ws:
            await ws.send('{"type":"ping"}')  # the tether contract's ping
            assert await recv_json(ws) == {
                "action": "error",
                "payload": [
                    {
                        "type": "union_tag_not_found",
                        "loc": [],
                        "msg": "Unable to extract tag using discriminator 'action'",
                    }
                ],
            }
            await ws.send("not json")
            error = await recv_json(ws)
            assert error["action"] == "error"
            assert error["payload"][0]["type"] == "json_invalid"
            await ws.send('{"action":"echo","ref":"m-2"}')
            assert await recv_json(ws) == {
                "action": "error",
                "payload": [
                    {"type": "missing", "loc": ["echo", "payload"], "msg": "Field required"}
                ],
                "version": 1,
                "ref": "m-2",
            }
            await ws.send(b"\x00binary")
            assert (await recv_json(ws))["payload"][0]["type"] == "json_invalid"
            await ws.send('{"action":"ping"}')
            assert await recv_json(ws) == {"action": "pong", "payload": None}

    run(test)


def test_the_server_can_close_a_users_socket_with_a_code() -> None:
    async def test() -> None:
        user = new_user()
        async with await authenticated(user) as ws:
            status, answer = post("/test/close", {"username": user["username"], "code": 4000})
            assert status == 202, answer
            assert await closed_with(ws) == 4000

    run(test)


def test_a_foreign_origin_is_refused_at_the_handshake() -> None:
    async def test() -> None:
        user = new_user()
        with pytest.raises(InvalidStatus) as refused:
            async with socket(f"?token={user['token']}", origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403

    run(test)


def test_bad_input_to_the_test_routes_is_refused_with_a_clear_error() -> None:
    assert post("/test/token", {"bogus": 1}) == (400, {"error": "bogus: Extra inputs are not permitted"})
    status, answer = post("/test/close", {"code": 99})
    assert status == 400 and answer["error"].startswith("code:"), answer
    name = f"dup-{secrets.token_hex(4)}"
    new_user(username=name)
    assert post("/test/token", {"username": name}) == (409, {"error": f"user {name!r} exists"})
    assert post("/test/push", {"username": "nobody-here", "title": "t"}) == (
        404,
        {"error": "no user 'nobody-here'"},
    )


def test_tokens_never_reach_the_server_log() -> None:
    log = os.environ.get("CHANX_LOG")
    if not log:
        pytest.skip("CHANX_LOG is not set")

    async def test() -> None:
        user = new_user()
        async with await authenticated(user) as ws:
            await ws.send("not json")  # a logged warning, with the request context
            await recv_json(ws)
        async with socket("?token=wrong-secret-token") as ws:
            await recv_json(ws)
            await closed_with(ws)
        with open(log, encoding="utf-8") as f:
            text = f.read()
        assert "/ws/notifications/" in text  # the log is live and covers these sockets
        assert user["token"] not in text
        assert "wrong-secret-token" not in text

    run(test)
