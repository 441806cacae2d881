"""Join tokens and the refusal format shared by every service of the space stack."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from space import common, topology
from space.common import Refusal, TokenError, busy, sign_token, verify_token
from space.edge import Edge

SECRET = "test-secret"


def test_token_round_trip():
    token = sign_token(SECRET, "room-1", "listener", now=1000.0)
    claims = verify_token(SECRET, token, space="room-1", role="listener", now=1500.0)
    assert claims == {"space": "room-1", "role": "listener", "exp": 1000 + common.TOKEN_TTL_S}


@pytest.mark.parametrize("kwargs, reason", [
    ({"secret": "another-secret"}, "signature"),
    ({"space": "room-2"}, "space"),
    ({"role": "speaker"}, "speaker"),
    ({"now": 1000.0 + common.TOKEN_TTL_S + 1}, "expired"),
])
def test_token_rejected(kwargs, reason):
    token = sign_token(SECRET, "room-1", "listener", now=1000.0)
    args = {"secret": SECRET, "space": "room-1", "role": "listener", "now": 1001.0, **kwargs}
    with pytest.raises(TokenError, match=reason):
        verify_token(args.pop("secret"), token, **args)


@pytest.mark.parametrize("token", [None, "", "no-dot", "a.b.c", "!!!.???"])
def test_malformed_token_rejected(token):
    with pytest.raises(TokenError):
        verify_token(SECRET, token)


def test_forged_claims_rejected():
    token = sign_token(SECRET, "room-1", "listener", now=1000.0)
    _, sig = token.split(".")
    forged = common._b64(json.dumps({"space": "room-1", "role": "speaker", "exp": 10**10}).encode())
    with pytest.raises(TokenError, match="signature"):
        verify_token(SECRET, f"{forged}.{sig}")


def test_refusal_format():
    r = busy("edge_full", "edge-a is full", 1.5, edge="edge-a")
    assert r.status == 503
    assert r.headers() == {"Retry-After": "2"}  # integer seconds, rounded up
    assert r.body() == {"error": "edge_full", "message": "edge-a is full",
                        "retry_after_s": 1.5, "edge": "edge-a"}
    not_found = Refusal(404, "no_such_space", "no space x")
    assert not_found.headers() == {}
    assert not_found.body()["retry_after_s"] is None


def test_edge_handshake_refusals():
    """A real edge (in process) refuses a bad token with 401 and a full edge with 503,
    Retry-After and the JSON refusal, in the WebSocket handshake response."""
    topo = topology.build("local", "resilient", base_port=27000)

    async def scenario():
        edge = Edge(topo, topo.services["edge-a"])
        async with serve(edge.handler, "127.0.0.1", 0, process_request=edge.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            base = f"ws://127.0.0.1:{port}/listen?space=s1&token="
            good = sign_token(topo.settings.secret, "s1", "listener")

            with pytest.raises(InvalidStatus) as bad:
                async with connect(base + sign_token(topo.settings.secret, "s2", "listener")):
                    pass
            assert bad.value.response.status_code == 401
            assert json.loads(bad.value.response.body)["error"] == "bad_token"

            edge.capacity = 0
            with pytest.raises(InvalidStatus) as full:
                async with connect(base + good):
                    pass
            response = full.value.response
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["Content-Type"] == "application/json"
            body = json.loads(response.body)
            assert body["error"] == "edge_full" and body["edge"] == "edge-a"
            assert body["retry_after_s"] > 0 and body["message"]

    asyncio.run(scenario())
