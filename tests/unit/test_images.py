"""The docker image's input hash decides when the image is rebuilt: it must change with
every input and with nothing else. No docker engine needed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chaos.targets import images


def make_fixtures(root: Path) -> Path:
    (root / "space").mkdir(parents=True)
    (root / "docker").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "space-stack"\ndependencies = []\n')
    (root / "space" / "__init__.py").write_text("")
    (root / "space" / "edge.py").write_text("EDGE = 1\n")
    (root / "docker" / "Dockerfile").write_text("FROM scratch\n")
    return root


def digest(root: Path, base: str = "sha256:base", tox: str = "sha256:tox", **extra) -> str:
    return images.input_hash(images.context_files(root), base, tox, extra or None)


@pytest.fixture
def fixtures(tmp_path):
    return make_fixtures(tmp_path / "fixtures")


def test_same_inputs_same_hash(fixtures, tmp_path):
    other = make_fixtures(tmp_path / "elsewhere")
    assert digest(fixtures) == digest(fixtures) == digest(other)  # the location does not count


def test_file_order_does_not_matter(fixtures):
    files = images.context_files(fixtures)
    assert (images.input_hash(files, "b", "t")
            == images.input_hash(list(reversed(files)), "b", "t"))


@pytest.mark.parametrize("rel", ["space/edge.py", "pyproject.toml", "docker/Dockerfile"])
def test_every_input_file_changes_the_hash(fixtures, rel):
    before = digest(fixtures)
    path = fixtures / rel
    path.write_text(path.read_text() + "# changed\n")
    assert digest(fixtures) != before


def test_new_and_renamed_sources_change_the_hash(fixtures):
    before = digest(fixtures)
    (fixtures / "space" / "new.py").write_text("")
    with_new = digest(fixtures)
    assert with_new != before
    (fixtures / "space" / "new.py").rename(fixtures / "space" / "renamed.py")
    assert digest(fixtures) not in (before, with_new)


def test_base_image_toxiproxy_and_extras_change_the_hash(fixtures):
    h = digest(fixtures)
    assert digest(fixtures, base="sha256:other") != h
    assert digest(fixtures, tox="sha256:other") != h
    assert digest(fixtures, arch="aarch64") != h


def test_caches_and_build_leftovers_do_not_change_the_hash(fixtures):
    before = digest(fixtures)
    (fixtures / "space" / "__pycache__").mkdir()
    (fixtures / "space" / "__pycache__" / "edge.cpython-311.pyc").write_bytes(b"\0\1")
    (fixtures / "space" / "stray.pyc").write_bytes(b"\0")
    (fixtures / "space_stack.egg-info").mkdir()
    (fixtures / "space_stack.egg-info" / "PKG-INFO").write_text("x")
    (fixtures / "docker" / "wheels").mkdir()
    (fixtures / "docker" / "wheels" / "numpy-2.0-cp311.whl").write_bytes(b"x")
    (fixtures / "space" / ".swp").write_text("x")
    (fixtures / "compose.yaml").write_text("services: {}\n")  # not an image input
    assert digest(fixtures) == before


def test_fields_are_delimited(tmp_path):
    """Two files "a"+"bc" must not hash like "ab"+"c"."""
    one = tmp_path / "one"
    two = tmp_path / "two"
    for root, (n1, c1) in ((one, ("a", "bc")), (two, ("ab", "c"))):
        (root / "space").mkdir(parents=True)
        (root / "space" / n1).write_text(c1)
    assert digest(one) != digest(two)


def test_the_build_snapshot_hashes_like_its_source(fixtures, tmp_path):
    """The image is labelled with the hash of the copy it was built from: equal to the
    source's when nothing changed, so a second ensure_images does not rebuild."""
    (fixtures / "space" / "__pycache__").mkdir()
    (fixtures / "space" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    ctx = tmp_path / "ctx"
    images.snapshot(fixtures, ctx)
    (ctx / "docker" / "wheels").mkdir()
    (ctx / "docker" / "wheels" / "x-1.0-py3-none-any.whl").write_bytes(b"x")
    assert digest(ctx) == digest(fixtures)
    assert not (ctx / "space" / "__pycache__").exists()


def test_context_files_of_the_real_fixtures():
    rels = [rel for rel, _ in images.context_files(images.fixtures_dir())]
    assert "docker/Dockerfile" in rels
    assert "pyproject.toml" in rels
    assert "space/topology.py" in rels
    assert not [r for r in rels if "__pycache__" in r or r.endswith(".pyc")]


def test_fixtures_dir_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("CHAOS_FIXTURES", str(tmp_path))
    assert images.fixtures_dir() == tmp_path.resolve()
    monkeypatch.delenv("CHAOS_FIXTURES")
    assert (images.fixtures_dir() / "space" / "topology.py").is_file()


# --- wheels for the image's Python, not the host's ----------------------------------------

def test_platform_tags_stop_at_the_images_glibc():
    tags = images.WheelTarget("3.11.2", (2, 36), "x86_64").platform_tags()
    assert "manylinux_2_36_x86_64" in tags and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def fake_wheel(d: Path, name: str, requires: list[str]) -> None:
    with zipfile.ZipFile(d / f"{name}-1.0-py3-none-any.whl", "w") as z:
        meta = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n{}\n\nlong description\n".format(
            name, "".join(f"Requires-Dist: {r}\n" for r in requires))
        z.writestr(f"{name}-1.0.dist-info/METADATA", meta)


def test_missing_requirements_use_the_images_python(tmp_path):
    # redis needs async-timeout only below 3.11.3: bookworm's 3.11.2 needs it, 3.11.7 not
    fake_wheel(tmp_path, "redis", ['async-timeout>=4.0.3; python_full_version < "3.11.3"',
                                   'cryptography; extra == "ocsp"', "idna"])
    fake_wheel(tmp_path, "idna", [])
    old = images.WheelTarget("3.11.2", (2, 36), "x86_64")
    new = images.WheelTarget("3.11.7", (2, 36), "x86_64")
    assert images.missing_requirements(tmp_path, old) == ["async-timeout>=4.0.3"]
    assert images.missing_requirements(tmp_path, new) == []


# --- rebuild only when the inputs changed ------------------------------------------------

class FakeImage:
    def __init__(self, inputs: str | None, image_id: str = "sha256:img"):
        self.id = image_id
        self.tags = [images.IMAGE]
        self.attrs = {"Config": {"Labels": {images.LABEL_INPUTS: inputs} if inputs else None}}


class FakeClient:
    def close(self):
        pass


def test_image_is_current():
    assert images.image_is_current(FakeImage("abc"), "abc")
    assert not images.image_is_current(FakeImage("abc"), "abd")
    assert not images.image_is_current(FakeImage(None), "abc")
    assert not images.image_is_current(None, "abc")


@pytest.mark.parametrize("label,force,builds", [("h1", False, 0), ("h0", False, 1),
                                                (None, False, 1), ("h1", True, 1)])
def test_ensure_images_builds_only_when_needed(monkeypatch, label, force, builds):
    built = []
    current = {"image": FakeImage(label) if label else None}
    monkeypatch.delenv("CHAOS_IMAGE", raising=False)
    monkeypatch.setattr(images, "docker_client", lambda timeout=0: FakeClient())
    monkeypatch.setattr(images, "current_inputs",
                        lambda client, progress: ("h1", {"BASE_IMAGE": "b"}))
    monkeypatch.setattr(images, "_local_image", lambda client, ref: current["image"])

    def fake_build(client, args, progress):
        built.append(args)
        current["image"] = FakeImage("h1", "sha256:new")
        return "h1"

    monkeypatch.setattr(images, "_build", fake_build)
    monkeypatch.setattr(images, "_remove_if_dangling", lambda client, image_id: None)
    assert images.ensure_images(force=force) == images.IMAGE
    assert len(built) == builds


def test_an_unreachable_engine_says_what_to_do(monkeypatch, tmp_path):
    from chaos.core.errors import StackError
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(StackError, match="docker engine is not running.*start dockerd"):
        images.docker_client(timeout=2)


def test_no_heavy_imports_at_module_level():
    code = ("import sys, chaos.targets.images, chaos.targets.docker; "
            "sys.exit(1 if 'docker' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_debootstrap_uses_the_machines_own_apt_sources(tmp_path, monkeypatch):
    from chaos.core.errors import MissingTool
    from chaos.targets.images import DEBIAN_SUITE, debian_mirror
    monkeypatch.delenv("CHAOS_DEBIAN_MIRROR", raising=False)
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: "
        f"{DEBIAN_SUITE}-security\nComponents: main\n\n"
        f"Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: {DEBIAN_SUITE} "
        f"{DEBIAN_SUITE}-updates\nComponents: main contrib\n")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (d / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(f"# old style\ndeb [arch=amd64] http://other.example/debian "
                                           f"{DEBIAN_SUITE} main\n")
    assert debian_mirror(tmp_path) == "http://other.example/debian"
    monkeypatch.setenv("CHAOS_DEBIAN_MIRROR", "http://chosen.example/debian")
    assert debian_mirror(tmp_path) == "http://chosen.example/debian"
    monkeypatch.delenv("CHAOS_DEBIAN_MIRROR")
    (tmp_path / "sources.list").write_text("")
    with pytest.raises(MissingTool, match="CHAOS_DEBIAN_MIRROR"):
        debian_mirror(tmp_path)
