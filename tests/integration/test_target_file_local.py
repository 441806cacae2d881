"""A running stack described by a target file, as a user would point the framework at their
own: the reference stack on the local runtime, written out as chaos-target.yaml (its
processes are not ours to find through the file, its toxiproxy links are)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from chaos import Experiment, fault, objective, run
from chaos.core.errors import ConfigError
from chaos.core.model import Phase, Verdict
from chaos.experiment import Audience
from chaos.faults import Ledger

from .conftest import bring_up

pytestmark = pytest.mark.local
BASE = 25000


@pytest.fixture(scope="module")
def space(chaos_home):
    from chaos.targets import stack
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


def describe(state, extra_links=()) -> dict:
    """The running reference stack as a user would describe it."""
    t = state.topology
    return {
        "name": "my-rooms", "runtime": "local", "toxiproxy": t.toxiproxy, "dcs": list(t.dcs),
        "adapter": {"protocol": "space"},
        "services": [{"name": s.name, "kind": s.kind, "dc": s.dc, "address": s.public or s.address}
                     for s in t.services.values() if s.kind != "toxiproxy"],
        "links": [{"name": lk.name, "src": lk.src, "dst": lk.dst,
                   **({"connect": lk.connect} if lk.src in ("listener", "speaker") else {})}
                  for lk in t.links.values()] + list(extra_links),
        "depends": {k: list(v) for k, v in t.depends.items()},
        "paths": {"join": ["gateway", "edge"], "audio": ["edge"], "speaker": ["origin"]},
        "nouns": {"origin": "the origin"},
    }


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaos", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_the_cli_works_against_a_described_stack(space, tmp_path):
    f = tmp_path / "chaos-target.yaml"
    f.write_text(yaml.safe_dump(describe(space)))
    st = cli("stack", "status", "--target", str(f), "--json")
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert doc["stack_id"] == "target-my-rooms" and doc["healthy"]
    assert {s["name"] for s in doc["services"]} >= {"gateway-a", "edge-c", "origin-a", "redis-b"}
    pl = cli("fault", "plan", "latency", "--link", "listener.edge-b", "--param", "latency_ms=100",
             "--target", str(f))
    assert pl.returncode == 0 and "toxic on listener.edge-b" in pl.stdout, pl.stderr
    refused = cli("fault", "inject", "dc_loss", "--dc", "dc-a", "--duration", "1", "--target", str(f))
    assert refused.returncode == 2 and "does not find or restart" in refused.stderr
    probe = cli("probe", "--listeners", "6", "--seconds", "3", "--thick-per-dc", "0", "--json",
                "--target", str(f))
    assert probe.returncode in (0, 1, 4), probe.stderr      # a verdict: passed, failed, inconclusive
    assert json.loads(probe.stdout)["listeners_joined"] == 6


def test_a_link_toxiproxy_does_not_have_is_refused_before_anything_runs(space, tmp_path):
    f = tmp_path / "chaos-target.yaml"
    f.write_text(yaml.safe_dump(describe(space, [{"name": "edge-a.cdn", "src": "edge-a", "dst": "origin-a"}])))
    exp = Experiment(name="never_runs", before_s=2, after_s=2,
                     method=[fault("latency", link="edge-a.cdn", at_s=0, duration_s=1, latency_ms=50)])
    with pytest.raises(ConfigError, match="has no proxy for link.*edge-a.cdn"):
        run(exp, target=str(f), reports_dir=str(tmp_path / "reports"))
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_an_experiment_runs_against_the_description_and_names_the_cause(space, tmp_path):
    f = tmp_path / "chaos-target.yaml"
    f.write_text(yaml.safe_dump(describe(space)))
    exp = Experiment(name="late_origin_link", before_s=4, after_s=6, recover_s=2,
                     audience=Audience(listeners=6, thick_per_dc=0, join_every_s=1.0),
                     method=[fault("latency", link="edge-*.origin-a", at_s=0, duration_s=5,
                                   latency_ms=800)],
                     during=[objective("mouth_to_ear")])
    result = run(exp, target=str(f), reports_dir=str(tmp_path / "reports"))
    j = result.record
    assert j.target.name == "my-rooms" and j.target.stack_id == "target-my-rooms"
    assert j.target.depends["edge-b"][0] == "origin-a"
    assert j.verdict is Verdict.FAILED, result.notes()
    m2e = result.slo("mouth_to_ear", Phase.DURING)
    assert m2e.verdict is Verdict.FAILED and m2e.value > 0.4
    assert all(f_.reverted for f_ in j.faults)
    assert Ledger().active("target-my-rooms") == []
    # judging is a pure function of the declaration and the recorded history
    again = cli("report", str(result.dir / "journal.json"), "--rejudge")
    assert again.returncode == 1, again.stderr          # judged again: still failed (for_verdict)
    same = json.loads((result.dir / "rejudged" / "journal.json").read_text())
    assert [(s["name"], s["phase"], s["verdict"], s["value"]) for s in same["slos"]] == \
        [(s.name, s.phase, s.verdict, s.value) for s in j.slos]
    looser = cli("report", str(result.dir), "--rejudge", "--objective", "mouth_to_ear=2",
                 "--objective", "audio_delivered=0.5", "--out", str(tmp_path / "looser"))
    assert looser.returncode == 0, looser.stderr
    assert "judged again: failed -> passed" in looser.stdout, looser.stdout
    relaxed = json.loads((tmp_path / "looser" / "journal.json").read_text())
    assert relaxed["verdict"] == "passed" and relaxed["rejudged"]["was"]["verdict"] == "failed"
    assert (tmp_path / "looser" / "report.html").exists()
    bad = cli("report", str(result.dir), "--rejudge", "--objective", "mouth_to_ear=fast")
    assert bad.returncode == 2 and "must be numbers" in bad.stderr
