"""Is a service answering? One small check per kind, each with a short timeout."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from redis.exceptions import RedisError

from chaos.core.target import Service


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


def _redis_ready(service: Service, address: str, timeout_s: float) -> tuple[bool, str]:
    """Up, and able to fail over: a replica in sync, a sentinel that knows the replica.

    A resilient stack whose replica has not synced (or whose sentinels have not heard of
    it) loses its state, or never fails over, when the primary goes: not healthy yet.
    """
    import redis

    host, port = _split(address)
    r = redis.Redis(host, port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        if service.kind == "sentinel":
            from chaos.adapters.space.launch import MASTER_NAME
            primary = r.sentinel_master(MASTER_NAME)
            replicas = r.sentinel_slaves(MASTER_NAME)
            ready = [x for x in replicas if "s_down" not in x.get("flags", "")]
            return (bool(ready), f"primary={primary['ip']}:{primary['port']}, replicas={len(ready)}")
        info = r.info("replication")
        if info.get("role") == "slave":
            link = info.get("master_link_status")
            return link == "up", f"role=replica, link={link}"
        return True, f"role=primary, replicas={info.get('connected_slaves', 0)}"
    finally:
        r.close()


def check(service: Service, address: str | None = None, timeout_s: float = 1.0) -> tuple[bool, str]:
    """(healthy, detail) for a service reached at address (default: its direct address)."""
    address = address or service.address
    try:
        if service.health:      # a target's own health URL: any 2xx is healthy
            with urllib.request.urlopen(service.health, timeout=timeout_s) as r:  # noqa: S310
                return 200 <= r.status < 300, f"HTTP {r.status}"
        if service.kind in ("redis", "sentinel"):
            return _redis_ready(service, address, timeout_s)
        if service.kind == "toxiproxy":
            with urllib.request.urlopen(f"http://{address}/version", timeout=timeout_s) as r:  # noqa: S310
                return True, "toxiproxy " + r.read().decode().strip().strip('"')[:40]
        h = http_json(f"http://{address}/health", timeout_s)
        detail = ", ".join(f"{k}={h[k]}" for k in ("role", "listeners", "redis") if k in h)
        return h.get("status", "ok") in ("ok", "degraded"), detail
    except (OSError, urllib.error.URLError, ValueError, RedisError) as e:
        return False, f"unreachable ({type(e).__name__}: {e})"[:120]
