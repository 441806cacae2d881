"""Is a service answering? One small check per kind, each with a short timeout."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from space.topology import Service


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def http_json(url: str, timeout_s: float = 1.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - loopback only
        return json.loads(r.read() or b"{}")


def redis_ping(address: str, timeout_s: float = 1.0) -> bool:
    with socket.create_connection(_split(address), timeout=timeout_s) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def check(service: Service, address: str | None = None, timeout_s: float = 1.0) -> tuple[bool, str]:
    """(healthy, detail) for a service reached at address (default: its direct address)."""
    address = address or service.address
    try:
        if service.kind in ("redis", "sentinel"):
            return (True, "") if redis_ping(address, timeout_s) else (False, "no PONG")
        if service.kind == "toxiproxy":
            with urllib.request.urlopen(f"http://{address}/version", timeout=timeout_s) as r:  # noqa: S310
                return True, "toxiproxy " + r.read().decode().strip().strip('"')[:40]
        h = http_json(f"http://{address}/health", timeout_s)
        detail = ", ".join(f"{k}={h[k]}" for k in ("role", "listeners", "redis") if k in h)
        return h.get("status", "ok") in ("ok", "degraded"), detail
    except (OSError, urllib.error.URLError, ValueError) as e:
        return False, f"unreachable ({type(e).__name__}: {e})"[:120]
