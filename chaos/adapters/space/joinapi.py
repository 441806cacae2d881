"""The gateway's HTTP join API, as a client sees it."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from chaos.audio.admission import Refused
from chaos.core.retry import parse_retry_after


@dataclass(frozen=True)
class Join:
    gateway: str
    body: dict

    @property
    def url(self) -> str:
        return self.body["url"]


async def _post(session: aiohttp.ClientSession, url: str, payload: dict, timeout_s: float) -> dict:
    async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
        try:
            body = await r.json(content_type=None)
        except ValueError:
            body = {"error": "bad_response", "message": (await r.text())[:200]}
        if r.status >= 400:
            body = body if isinstance(body, dict) else {}
            hint = parse_retry_after(r.headers.get("Retry-After"))
            raise Refused(r.status, body.get("error", "http_error"), body.get("message", ""),
                          body.get("retry_after_s", hint))
        return body


async def create_space(session: aiohttp.ClientSession, gateways: list[str], space: str,
                       timeout_s: float = 3.0) -> str:
    """Create the space through the first gateway that answers."""
    errors = []
    for gw in gateways:
        try:
            body = await _post(session, f"http://{gw}/spaces", {"space": space}, timeout_s)
            return body["space"]
        except (aiohttp.ClientError, TimeoutError, Refused) as e:
            errors.append(f"{gw}: {e}")
    raise Refused(503, "no_gateway", "; ".join(errors), None)


async def join(session: aiohttp.ClientSession, gateway: str, space: str, role: str,
               timeout_s: float, speaker: str | None = None) -> Join:
    payload = {"role": role} | ({"speaker": speaker} if speaker else {})
    body = await _post(session, f"http://{gateway}/spaces/{space}/join", payload, timeout_s)
    return Join(gateway, body)
