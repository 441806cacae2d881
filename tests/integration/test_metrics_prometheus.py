"""A run's live SLIs on /metrics, scraped by a real Prometheus (Debian's `prometheus`, started
here on loopback with its own storage) and read back over Prometheus' HTTP API, as a Grafana
panel would: the fault is seen active while it is, the run's phases and joins are there."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from chaos.core.errors import ConfigError
from chaos.experiment import Audience, Experiment, fault
from chaos.runner import metrics, run

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]
BASE = 14000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def space(chaos_home):
    from chaos.targets import stack
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run fixtures/setup.sh (it installs Debian's "
                    "`prometheus`), then run this test again")
    web, target = _free_port(), _free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(json.dumps({       # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [{"job_name": "chaos-run", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}]}))
    log = (tmp_path / "prometheus.log").open("w")
    p = subprocess.Popen([binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'data'}",
                          f"--web.listen-address=127.0.0.1:{web}"], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if p.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not get ready: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, target
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        log.close()


def _query(url: str, promql: str, start: float, end: float) -> list[dict]:
    q = urllib.parse.urlencode({"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{q}", timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_a_runs_live_slis_are_scraped_by_prometheus_and_read_back(space, prometheus, monkeypatch, tmp_path):
    url, port = prometheus
    monkeypatch.setenv(metrics.ENV_PORT, str(port))
    exp = Experiment(name="metrics_latency", before_s=5, after_s=5,
                     audience=Audience(listeners=6, thick_per_dc=0, join_every_s=1.0),
                     method=[fault("latency", link="listener.edge-b", at_s=0, duration_s=5, latency_ms=300)])
    t0 = time.time()
    result = run(exp, space, reports_dir=str(tmp_path / "reports"))
    time.sleep(2.5)        # the last scrapes happened while the run served; nothing after it
    t1 = time.time()
    j = result.record
    run_info = _query(url, f'chaos_run_info{{run_id="{j.run_id}"}}', t0, t1)
    assert run_info and run_info[0]["metric"]["experiment"] == "metrics_latency"
    active = _query(url, "chaos_fault_active", t0, t1)
    assert len(active) == 1 and active[0]["metric"]["kind"] == "latency", active
    seen = [float(v) for _, v in active[0]["values"]]
    assert 1.0 in seen and seen[-1] == 0.0, seen          # active while it was, then reverted
    f = j.faults[0]
    on = sum(1 for v in seen if v == 1.0)   # one point a second: about the fault's 5 s
    assert 3 <= on <= (f.ended_s - f.started_s) + 4, seen
    phases = {r["metric"]["phase"]: [float(v) for _, v in r["values"]]
              for r in _query(url, "chaos_run_phase", t0, t1)}
    assert 1.0 in phases["before"] and 1.0 in phases["during"] and 1.0 in phases["after"], phases
    joins = _query(url, 'chaos_join_duration_seconds_count{dc="all"}', t0, t1)
    assert joins and max(float(v) for _, v in joins[0]["values"]) >= 6     # every listener, then probes
    delivered = _query(url, 'chaos_audio_delivered_ratio{dc="dc-a"}', t0, t1)
    assert delivered and max(float(v) for _, v in delivered[0]["values"]) > 0.9
    # the port is free again: the endpoint lived as long as the run
    with socket.socket() as s:      # (scrapes leave TIME_WAIT behind: reuse allows that, not a listener)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_a_bad_metrics_port_is_refused_before_the_run(space, monkeypatch, tmp_path):
    monkeypatch.setenv(metrics.ENV_PORT, "９０９０")   # full-width digits
    exp = Experiment(name="never_runs", before_s=5, after_s=5, audience=Audience(listeners=2, thick_per_dc=0))
    with pytest.raises(ConfigError, match="CHAOS_METRICS_PORT.*is not a port"):
        run(exp, space, reports_dir=str(tmp_path / "reports"))
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
