"""The Icecast fixture's files, without docker: what its image is built from, and that the
compose file, toxiproxy config and target file agree on names and ports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from chaos.targets import icecast, images

yaml = pytest.importorskip("yaml")   # PyYAML: the target-file loader's dependency

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "icecast"


def test_image_inputs_are_the_dockerfile_and_conf_and_change_with_them(tmp_path):
    files = dict(icecast.context_files(ROOT))
    assert {"docker/Dockerfile", "conf/icecast.sh", "conf/feeder.sh", "conf/toxiproxy.json"} <= set(files)
    assert not any(k.startswith(("compose", "chaos-target")) for k in files)
    copy = tmp_path / "icecast"
    shutil.copytree(ROOT, copy)
    before = images.input_hash(icecast.context_files(copy), "base", "tox")
    (copy / "conf" / "icecast.sh").write_text((copy / "conf" / "icecast.sh").read_text() + "\n")
    assert images.input_hash(icecast.context_files(copy), "base", "tox") != before


def test_compose_toxiproxy_and_target_file_agree():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert "version" not in compose
    proxies = {p["name"]: p for p in json.loads((ROOT / "conf" / "toxiproxy.json").read_text())}
    target = yaml.safe_load((ROOT / "chaos-target.yaml").read_text())
    services = compose["services"]
    # "127.0.0.1:${VAR:-host port}:container port": overridable, the default published
    ports = [re.fullmatch(r"127\.0\.0\.1:\$\{\w+:-(\d+)\}:(\d+)", p).groups()
             for p in services["toxiproxy"]["ports"]]
    published = {int(host) for host, inside in ports if host == inside}
    for link in target["links"]:
        proxy = proxies[link["name"]]                         # every link is a proxy
        assert proxy["upstream"].split(":")[0] == link["dst"]  # to the service it names
        if "connect" in link:                                 # our clients' links are published
            port = int(link["connect"].rsplit(":", 1)[1])
            assert port in published and proxy["listen"].endswith(f":{port}")
    assert target["toxiproxy"].endswith(":21474")
    for svc in target["services"]:
        labels = services[svc["name"]]["labels"]
        assert svc["find"]["labels"].items() <= labels.items()
        assert labels["chaos.dc"] == svc["dc"] and labels["chaos.kind"] == svc["kind"]
    for name, net in compose["networks"].items():
        assert net.get("internal", False) == (name != "ingress")
    for svc in services.values():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:")
