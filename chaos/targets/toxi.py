"""toxiproxy, through toxiproxy-python, behind one small interface with deadlines.

toxiproxy-python keeps its server address in class attributes and calls ``requests``
without a timeout, so a hung toxiproxy would hang the caller forever. Here every call
(1) holds a lock while it points the library at this server, (2) goes through a
``requests`` shim that always sets a socket timeout, and (3) runs under an overall
deadline. Nothing else in the framework imports toxiproxy-python.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from chaos.core.errors import ToxiproxyError, ToxiproxyTimeout  # noqa: F401 - re-exported

T = TypeVar("T")
_LOCK = threading.Lock()
_POOL = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="toxiproxy")


class _TimeoutRequests:
    """Stands in for the ``requests`` module inside toxiproxy-python: adds a timeout."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def _call(self, method: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (self.timeout_s, self.timeout_s))
        return requests.request(method, **kwargs)

    def get(self, **kw: Any) -> requests.Response:
        return self._call("GET", **kw)

    def post(self, **kw: Any) -> requests.Response:
        return self._call("POST", **kw)

    def delete(self, **kw: Any) -> requests.Response:
        return self._call("DELETE", **kw)


class Toxiproxy:
    def __init__(self, address: str, timeout_s: float = 2.0) -> None:
        host, port = address.rsplit(":", 1)
        self.host, self.port, self.timeout_s = host, int(port), timeout_s

    def _run(self, what: str, fn: Callable[[], T], deadline_s: float | None = None) -> T:
        import toxiproxy.api as api
        from toxiproxy.exceptions import NotFound, ProxyExists, InvalidToxic

        deadline_s = deadline_s or self.timeout_s * 3

        def call() -> T:
            with _LOCK:
                api.requests = _TimeoutRequests(self.timeout_s)
                api.APIConsumer.host, api.APIConsumer.port = self.host, self.port
                return fn()

        future = _POOL.submit(call)
        try:
            return future.result(timeout=deadline_s)
        except cf.TimeoutError:
            future.cancel()
            raise ToxiproxyTimeout(f"toxiproxy at {self.host}:{self.port} did not answer {what} "
                                   f"within {deadline_s:g} s") from None
        except (NotFound, ProxyExists, InvalidToxic) as e:
            raise ToxiproxyError(f"toxiproxy refused {what}: {_text(e)}") from None
        except requests.RequestException as e:
            raise ToxiproxyError(f"toxiproxy at {self.host}:{self.port} failed {what}: "
                                 f"{type(e).__name__}") from None

    # -- the operations the framework needs ------------------------------------------------
    def version(self) -> str:
        from toxiproxy.api import APIConsumer
        return self._run("version", lambda: APIConsumer.get("/version").text.strip().strip('"'))

    def proxies(self) -> dict[str, dict]:
        """name -> {listen, upstream, enabled, toxics: [{name, type, stream, attributes}]}"""
        from toxiproxy.api import APIConsumer
        return self._run("list proxies", lambda: APIConsumer.get("/proxies").json())

    def add_toxic(self, proxy: str, kind: str, attributes: dict, stream: str = "downstream",
                  toxicity: float = 1.0, name: str | None = None) -> str:
        from toxiproxy.proxy import Proxy
        name = name or f"{kind}_{stream}"

        def add() -> str:
            p = Proxy(name=proxy, upstream="", enabled=True, listen="")
            p.add_toxic(type=kind, stream=stream, toxicity=toxicity, attributes=attributes, name=name)
            return name
        return self._run(f"add toxic {name} to {proxy}", add)

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Idempotent: False if it was not there."""
        from toxiproxy.api import APIConsumer
        resp = self._run(f"remove toxic {name} from {proxy}", lambda: _delete_quiet(
            APIConsumer, f"/proxies/{proxy}/toxics/{name}"))
        return resp

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Enable or disable a proxy, and check that it took: re-enabling fails when
        something else took the freed port meanwhile, and toxiproxy-python does not say so."""
        from toxiproxy.api import APIConsumer
        what = f"{'enable' if enabled else 'disable'} {proxy}"
        resp = self._run(what, lambda: APIConsumer.post(f"/proxies/{proxy}", json={"enabled": enabled}))
        if resp.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy refused to {what}: {resp.status_code} {resp.text.strip()[:200]}")
        now = self.proxies().get(proxy, {}).get("enabled")
        if now is not enabled:
            raise ToxiproxyError(f"toxiproxy did not {what} (it reports enabled={now}); "
                                 "if its listen port was taken meanwhile, free it and `chaos stack reset`")

    def populate(self, proxies: list[dict]) -> list[str]:
        """Create the proxies ({name, listen, upstream, enabled}), replacing any of the same
        name whose listen or upstream differs (toxiproxy's /populate); their names."""
        from toxiproxy.api import APIConsumer
        resp = self._run(f"create {len(proxies)} proxies", lambda: APIConsumer.post(
            "/populate", json=proxies))
        if resp.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy refused to create the proxies: {resp.status_code} "
                                 f"{resp.text.strip()[:300]}")
        return [p["name"] for p in proxies]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic: the safety net."""
        from toxiproxy.api import APIConsumer
        self._run("reset", lambda: APIConsumer.post("/reset"))


def _delete_quiet(api_consumer, url: str) -> bool:
    from toxiproxy.exceptions import NotFound
    try:
        api_consumer.delete(url)
        return True
    except NotFound:
        return False


def _text(e: Exception) -> str:
    arg = e.args[0] if e.args else e
    return arg.decode(errors="replace").strip() if isinstance(arg, bytes) else str(arg)
