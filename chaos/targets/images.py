"""The docker images of the reference stack, built without a container registry.

One image, ``chaos-space:latest``, serves every service. It is built from
``fixtures/docker/Dockerfile`` on top of:

- a base image: ``chaos-space-base:bookworm``, a minimal Debian made with ``debootstrap``
  and ``docker import`` (python3, redis-server, iptables, iproute2), unless the
  environment variable ``CHAOS_BASE_IMAGE`` names an image that exists or can be pulled;
- the stack and its dependencies as wheels, downloaded on the host (PyPI) for the base
  image's Python version, glibc and architecture (asked from the base image itself, so
  that environment markers are right), cached in ~/.cache/chaos/wheels, and installed in
  the image with ``--no-index``; the build itself runs without network;
- the host's ``toxiproxy-server`` binary (a static Go binary), put in a one-file image
  (``chaos-toxiproxy:<sha>``) that the Dockerfile copies it from.

The image carries the label ``chaos.image.inputs``: a hash of everything that went into
it (Dockerfile, the stack's sources, the base image's id, the toxiproxy binary). It is
rebuilt only when that hash changes, so a second ``ensure_images`` takes well under a
second.

Environment: CHAOS_BASE_IMAGE (a base with python3, e.g. python:3.11-slim-bookworm, if
you have a registry), CHAOS_IMAGE (use this image as is, e.g. from your registry),
CHAOS_TOXIPROXY_SERVER, CHAOS_DEBIAN_MIRROR, CHAOS_CACHE_DIR, CHAOS_BUILD_DIR (temp space).

``python -m chaos.targets.images [--force]`` builds them by hand (fixtures/setup.sh does).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chaos.core.errors import EngineUnavailable, MissingTool, StackError
from chaos.targets.base import Progress, quiet

IMAGE_REPO = "chaos-space"
IMAGE = f"{IMAGE_REPO}:latest"
BASE_IMAGE = "chaos-space-base:bookworm"
TOXIPROXY_REPO = "chaos-toxiproxy"
TOXIPROXY_OFFICIAL = "ghcr.io/shopify/toxiproxy:2.12.0"
LABEL_INPUTS = "chaos.image.inputs"
DOCKERFILE = "docker/Dockerfile"       # relative to fixtures/ (the build context)

# Bump when the way images are assembled changes in a way the hashed files do not show.
RECIPE_VERSION = "1"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "redis-server", "iptables", "iproute2",
                   "ca-certificates")

API_TIMEOUT_S = 30
BUILD_TIMEOUT_S = 900
DEBOOTSTRAP_TIMEOUT_S = 1200
PIP_TIMEOUT_S = 900
PULL_TIMEOUT_S = 300


# ---------------------------------------------------------------------------- locations

def fixtures_dir() -> Path:
    """fixtures/ of this checkout (overridable with CHAOS_FIXTURES)."""
    env = os.environ.get("CHAOS_FIXTURES")
    if env:
        return Path(env).resolve()
    from chaos.adapters.space.launch import fixtures_dir as reference_fixtures
    return reference_fixtures()


def cache_dir() -> Path:
    env = os.environ.get("CHAOS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "chaos"


def find_toxiproxy_server() -> Path | None:
    """The host's toxiproxy-server binary: CHAOS_TOXIPROXY_SERVER, else on PATH."""
    env = os.environ.get("CHAOS_TOXIPROXY_SERVER")
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise MissingTool(f"CHAOS_TOXIPROXY_SERVER={env} is not an executable file")
        return p.resolve()
    found = shutil.which("toxiproxy-server")
    return Path(found).resolve() if found else None


# ------------------------------------------------------------------------------ hashing

def _skip(rel: Path) -> bool:
    parts = rel.parts
    return (any(p == "__pycache__" or p.endswith(".egg-info") or p.startswith(".")
                for p in parts)
            or rel.suffix in (".pyc", ".pyo")
            or (len(parts) >= 2 and parts[0] == "docker" and parts[1] == "wheels"))


def context_files(fixtures: Path) -> list[tuple[str, Path]]:
    """(path in the build context, file) of everything the Dockerfile reads from fixtures/.

    pyproject.toml, the ``space`` package and ``docker/`` (the Dockerfile); caches,
    egg-info and stray wheels are left out.
    """
    out: list[tuple[str, Path]] = []
    for top in ("pyproject.toml", "space", "docker"):
        root = fixtures / top
        if root.is_file():
            out.append((top, root))
            continue
        if not root.is_dir():
            continue
        for p in root.rglob("*"):
            rel = p.relative_to(fixtures)
            if p.is_file() and not _skip(rel):
                out.append((rel.as_posix(), p))
    return sorted(out)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_hash(files: Iterable[tuple[str, Path]], base_image_id: str, toxiproxy_id: str,
               extra: dict[str, str] | None = None) -> str:
    """sha256 over the build's inputs: file names and contents, the base image's id,
    the toxiproxy binary's (or image's) identity, and anything in ``extra``.

    Every field is length-prefixed, so that no two different inputs hash alike by
    concatenation. The order of ``files`` does not matter.
    """
    h = hashlib.sha256()

    def field(tag: str, value: bytes) -> None:
        h.update(f"{tag}:{len(value)}:".encode())
        h.update(value)

    field("recipe", RECIPE_VERSION.encode())
    field("base", base_image_id.encode())
    field("toxiproxy", toxiproxy_id.encode())
    for k, v in sorted((extra or {}).items()):
        field(f"extra.{k}", v.encode())
    for rel, path in sorted(files):
        field("name", rel.encode())
        field("file", path.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------- docker

def docker_client(timeout: int = API_TIMEOUT_S):
    """A docker SDK client that answered a ping, or a StackError saying what to do."""
    try:
        import docker
    except ImportError as e:
        raise MissingTool("the docker SDK is not installed: pip install 'docker>=7'") from e
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:  # docker.errors.DockerException, requests errors
        raise EngineUnavailable(
            "the docker engine is not running or not reachable: start dockerd "
            "(fixtures/setup.sh does), or point DOCKER_HOST at it "
            f"({type(e).__name__}: {e})") from e
    return client


def _local_image(client, ref: str):
    import docker
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as e:
        raise StackError(f"cannot inspect image {ref}: {e}") from e


def _local_or_pull(client, ref: str, progress: Progress):
    img = _local_image(client, ref)
    if img is not None:
        return img
    progress(f"image {ref} is not here; trying to pull it")
    import docker
    puller = docker.from_env(timeout=PULL_TIMEOUT_S)
    try:
        puller.images.pull(ref)
    except Exception as e:
        progress(f"cannot pull {ref}: {type(e).__name__}: {str(e)[:200]}")
        return None
    finally:
        puller.close()
    return _local_image(client, ref)


# ------------------------------------------------------------------------- base image

def _ensure_base(client, progress: Progress) -> tuple[str, object, bool]:
    """(reference, image, offline) of the base image; builds the debootstrap one if needed."""
    wanted = os.environ.get("CHAOS_BASE_IMAGE")
    if wanted:
        img = _local_or_pull(client, wanted, progress)
        if img is not None:
            return wanted, img, False
        progress(f"CHAOS_BASE_IMAGE={wanted} is neither here nor pullable; "
                 f"using the offline base {BASE_IMAGE} instead")
    img = _local_image(client, BASE_IMAGE)
    if img is None:
        build_base_image(client, progress)
        img = _local_image(client, BASE_IMAGE)
        if img is None:
            raise StackError(f"{BASE_IMAGE} was imported but cannot be found")
    return BASE_IMAGE, img, True


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror debootstrap uses: CHAOS_DEBIAN_MIRROR, else the first archive of
    this machine's own apt sources (deb822 ``.sources`` or one-line ``.list``) that serves
    the suite's ``main`` (security and update archives do not carry a whole suite)."""
    env = os.environ.get("CHAOS_DEBIAN_MIRROR")
    if env:
        return env
    found: list[tuple[str, list[str], list[str]]] = []   # (uri, suites, components)
    for f in sorted(apt_dir.glob("sources.list.d/*.sources")):
        for stanza in f.read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.strip().startswith("#") or ":" not in line:
                    continue
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    found.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
    for f in [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]:
        if f.is_file():
            for line in f.read_text(errors="replace").splitlines():
                parts = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
                if len(parts) >= 4 and parts[0] == "deb":
                    found.append((parts[1], [parts[2]], parts[3:]))
    for uri, suites, components in found:
        if DEBIAN_SUITE in suites and "main" in components:
            return uri.rstrip("/")
    raise MissingTool(f"no Debian archive for {DEBIAN_SUITE} main in this machine's apt sources "
                      f"({apt_dir}); set CHAOS_DEBIAN_MIRROR to a Debian mirror's URL")


def build_base_image(client, progress: Progress = quiet) -> None:
    """debootstrap a minimal Debian with python3 and redis, and import it as BASE_IMAGE."""
    if not shutil.which("debootstrap"):
        raise MissingTool(
            f"the base image {BASE_IMAGE} is missing and debootstrap, which builds it, is not "
            "installed: apt-get install debootstrap (or set CHAOS_BASE_IMAGE to an image "
            "with python3.11, e.g. python:3.11-slim-bookworm, if you have a registry)")
    if os.geteuid() != 0:
        raise StackError(
            f"the base image {BASE_IMAGE} is missing and building it (debootstrap) needs root: "
            "run `sudo python -m chaos.targets.images` once, or set CHAOS_BASE_IMAGE to an "
            "image with python3.11 (e.g. python:3.11-slim-bookworm) if you have a registry")
    mirror = debian_mirror()
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="chaos-rootfs-", dir=os.environ.get("CHAOS_BUILD_DIR")))
    try:
        rootfs = work / "rootfs"
        log = work / "debootstrap.log"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
               DEBIAN_SUITE, str(rootfs), mirror]
        progress(f"building the base image {BASE_IMAGE}: debootstrap {DEBIAN_SUITE} "
                 f"from {mirror} (about a minute)")
        with open(log, "wb") as out:
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=DEBOOTSTRAP_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        if rc != 0:
            tail = _tail(log.read_text(errors="replace"), 15)
            raise StackError(f"debootstrap failed ({rc}) building {BASE_IMAGE}; "
                             f"last lines:\n{tail}\nCheck that {mirror} is reachable.")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            d = rootfs / junk
            for p in d.glob("*"):
                if p.is_file():
                    p.unlink()
        progress(f"importing the base rootfs ({time.monotonic() - t0:.0f} s so far)")
        tar = work / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tar), "."],
                       check=True, timeout=600, capture_output=True)
        repo, tag = BASE_IMAGE.split(":")
        changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8", "LABEL chaos.image=space-base", 'CMD ["/bin/bash"]']
        client.api.import_image(src=str(tar), repository=repo, tag=tag, changes=changes)
        progress(f"base image {BASE_IMAGE} ready in {time.monotonic() - t0:.0f} s")
    except subprocess.CalledProcessError as e:
        raise StackError(f"packing the rootfs failed: {e.stderr.decode(errors='replace')[-500:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------ toxiproxy

def _ensure_toxiproxy(client, progress: Progress) -> tuple[str, str]:
    """(image the Dockerfile copies /toxiproxy from, identity for the hash)."""
    binary = find_toxiproxy_server()
    if binary is None:
        img = _local_image(client, TOXIPROXY_OFFICIAL)
        if img is not None:
            return TOXIPROXY_OFFICIAL, img.id
        raise MissingTool(
            "toxiproxy-server is not installed, and the image needs it: build it with "
            "`CGO_ENABLED=0 go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` "
            "and copy ~/go/bin/server to /usr/local/bin/toxiproxy-server "
            "(or set CHAOS_TOXIPROXY_SERVER to the binary)")
    digest = file_digest(binary)
    ref = f"{TOXIPROXY_REPO}:{digest[:16]}"
    if _local_image(client, ref) is None:
        progress(f"packing {binary} into {ref}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tf.gettarinfo(str(binary), arcname="toxiproxy")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755
            with open(binary, "rb") as f:
                tf.addfile(info, f)
        repo, tag = ref.split(":")
        client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag,
                                          changes=["LABEL chaos.image=toxiproxy"])
    return ref, f"sha256:{digest}"


# ---------------------------------------------------------------------------- wheels

@dataclass(frozen=True)
class WheelTarget:
    """The Python and platform inside the image, which the wheels must fit."""
    python: str          # full version, e.g. "3.11.2": markers like python_full_version need it
    glibc: tuple[int, int]
    arch: str            # x86_64, aarch64

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def platform_tags(self) -> list[str]:
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(5, minor + 1)]
        if (major, minor) >= (2, 17):
            tags.append(f"manylinux2014_{self.arch}")
        if (major, minor) >= (2, 12):
            tags.append(f"manylinux2010_{self.arch}")
        tags.append(f"manylinux1_{self.arch}")
        return tags

    def marker_env(self) -> dict[str, str]:
        return {"python_version": self.python_minor, "python_full_version": self.python,
                "implementation_name": "cpython", "implementation_version": self.python,
                "platform_python_implementation": "CPython", "sys_platform": "linux",
                "platform_system": "Linux", "os_name": "posix", "platform_machine": self.arch,
                "platform_release": "", "platform_version": "", "extra": ""}


def probe_base(client, base_ref: str) -> WheelTarget:
    """Ask the base image for its Python version and glibc (a throwaway container, no network)."""
    script = ("import platform,sys; v=platform.libc_ver()[1] or '2.17'; "
              "print(platform.python_version(), v, platform.machine())")
    c = client.containers.create(base_ref, ["python3", "-c", script], network_disabled=True)
    try:
        c.start()
        rc = c.wait(timeout=60).get("StatusCode")
        out = c.logs().decode(errors="replace").strip()
    except Exception as e:
        raise StackError(f"cannot run python3 in the base image {base_ref}: {e}") from e
    finally:
        try:
            c.remove(force=True)
        except Exception:
            pass
    try:
        py, libc, arch = out.splitlines()[-1].split()
        if rc != 0:
            raise ValueError(out)
        major, minor = (int(x) for x in libc.split(".")[:2])
    except ValueError as e:
        raise StackError(f"the base image {base_ref} has no usable python3 "
                         f"(exit {rc}): {out[-300:]}") from e
    return WheelTarget(py, (major, minor), arch)


def _packaging():
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.utils import canonicalize_name
    return Requirement, canonicalize_name


def _wheel_requirements(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode(errors="replace")
    headers = text.split("\n\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in headers.splitlines()
            if line.startswith("Requires-Dist:")]


def missing_requirements(wheel_dir: Path, target: WheelTarget) -> list[str]:
    """Requirements of the wheels in wheel_dir that apply in the image but have no wheel.

    pip download evaluates environment markers for the Python running it, not for the
    target: redis needs async-timeout on Python < 3.11.3 (Debian bookworm has 3.11.2),
    which a download on a 3.11.7 host leaves out.
    """
    Requirement, canonicalize_name = _packaging()
    have = {canonicalize_name(w.name.split("-", 1)[0]) for w in wheel_dir.glob("*.whl")}
    env = target.marker_env()
    missing: dict[str, str] = {}
    for whl in sorted(wheel_dir.glob("*.whl")):
        for line in _wheel_requirements(whl):
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            if name not in have:
                spec = f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}"
                missing[name] = f"{spec}{req.specifier}"
    return sorted(missing.values())


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise StackError(f"{what}: pip took over {PIP_TIMEOUT_S} s") from e
    if r.returncode != 0:
        raise StackError(f"{what} failed (pip exit {r.returncode}); last lines:\n"
                         f"{_tail(r.stdout + r.stderr, 15)}\n"
                         "PyPI must be reachable from this machine to build the image.")


def _dependency_wheels(fixtures: Path, target: WheelTarget, progress: Progress) -> Path:
    """A directory of wheels of the stack's dependencies for the image's Python and glibc.

    Cached under ~/.cache/chaos/wheels, keyed by the dependency list and the target.
    """
    meta = tomllib.loads((fixtures / "pyproject.toml").read_text())
    deps = list(meta.get("project", {}).get("dependencies", []))
    key = hashlib.sha256("\n".join([repr(target), *deps]).encode()).hexdigest()[:16]
    out = cache_dir() / "wheels" / key
    if (out / ".complete").exists():
        return out
    progress(f"downloading wheels for Python {target.python} / glibc "
             f"{target.glibc[0]}.{target.glibc[1]} / {target.arch}: {', '.join(deps)}")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    args = ["download", "--only-binary=:all:", "--python-version", target.python_minor,
            "--implementation", "cp", "-d", str(tmp)]
    for tag in target.platform_tags():
        args += ["--platform", tag]
    wanted = deps
    for _ in range(5):
        _pip(args + wanted, "downloading the stack's dependency wheels")
        wanted = missing_requirements(tmp, target)
        if not wanted:
            break
        progress(f"also needed by Python {target.python}: {', '.join(wanted)}")
    else:
        raise StackError(f"dependency wheels still incomplete for Python {target.python}: "
                         f"{', '.join(wanted)}")
    (tmp / ".complete").write_text("\n".join(deps) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def snapshot(fixtures: Path, ctx: Path) -> None:
    """Copy the image's inputs from fixtures/ into a build context."""
    for rel, path in context_files(fixtures):
        dst = ctx / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst)


def _prepare_context(fixtures: Path, ctx: Path, target: WheelTarget,
                     progress: Progress) -> None:
    """Snapshot fixtures/ into ctx, add the wheels; everything after reads the snapshot,
    so that edits made meanwhile cannot end up in an image labelled with other inputs."""
    snapshot(fixtures, ctx)
    wheels = ctx / "docker" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for whl in _dependency_wheels(ctx, target, progress).glob("*.whl"):
        shutil.copy2(whl, wheels / whl.name)
    # The stack itself: a pure-Python wheel, built outside ctx so that no build/ or
    # egg-info lands in the context.
    src = ctx.parent / "src"
    src.mkdir()
    shutil.copy2(ctx / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(ctx / "space", src / "space")
    isolation = ["--no-build-isolation"] if _has_setuptools() else []
    _pip(["wheel", "--no-deps", *isolation, "-w", str(wheels), str(src)],
         "building the space-stack wheel")


def _has_setuptools() -> bool:
    """Whether this Python can build the wheel itself (no isolated build env from PyPI)."""
    import importlib.util
    try:
        if importlib.util.find_spec("setuptools") is None:
            return False
        return (importlib.util.find_spec("setuptools.command.bdist_wheel") is not None
                or importlib.util.find_spec("wheel") is not None)
    except ImportError:
        return False


# ----------------------------------------------------------------------------- build

def _tail(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def current_inputs(client, progress: Progress = quiet) -> tuple[str, dict[str, str]]:
    """(input hash, build args) of the image as it would be built now."""
    fixtures = fixtures_dir()
    dockerfile = fixtures / DOCKERFILE
    if not dockerfile.is_file():
        raise StackError(f"{dockerfile} is missing: is CHAOS_FIXTURES ({fixtures}) the "
                         "project's fixtures/ directory?")
    base_ref, base_img, offline = _ensure_base(client, progress)
    tox_ref, tox_id = _ensure_toxiproxy(client, progress)
    digest = input_hash(context_files(fixtures), base_img.id, tox_id)
    args = {"BASE_IMAGE": base_ref, "TOXIPROXY_IMAGE": tox_ref,
            "_offline": "1" if offline else "", "_base_id": base_img.id, "_tox_id": tox_id}
    return digest, args


def image_is_current(image, digest: str) -> bool:
    if image is None:
        return False
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return labels.get(LABEL_INPUTS) == digest


def ensure_images(progress: Progress = quiet, force: bool = False) -> str:
    """Make sure the stack's image exists and is current; return its reference.

    If CHAOS_IMAGE names an image (e.g. one from your registry), that one is used as is.
    """
    client = docker_client()
    try:
        wanted = os.environ.get("CHAOS_IMAGE")
        if wanted and wanted != IMAGE:
            if _local_or_pull(client, wanted, progress) is None:
                raise StackError(f"CHAOS_IMAGE={wanted} is neither here nor pullable: "
                                 f"unset it to build {IMAGE} offline")
            return wanted
        digest, args = current_inputs(client, progress)
        existing = _local_image(client, IMAGE)
        if not force and image_is_current(existing, digest):
            progress(f"image {IMAGE} is up to date ({digest[:12]})")
            return IMAGE
        why = "forced" if force else ("missing" if existing is None else "inputs changed")
        progress(f"building {IMAGE} ({why}; inputs {digest[:12]}) on {args['BASE_IMAGE']}")
        labelled = _build(client, args, progress)
        built = _local_image(client, IMAGE)
        if not image_is_current(built, labelled):
            raise StackError(f"built {IMAGE} but it does not carry {LABEL_INPUTS}={labelled}")
        if existing is not None and existing.id != built.id:
            _remove_if_dangling(client, existing.id)
        return IMAGE
    finally:
        client.close()


def _build(client, args: dict[str, str], progress: Progress) -> str:
    """Build IMAGE; return the input hash it is labelled with (that of the snapshot built)."""
    t0 = time.monotonic()
    fixtures = fixtures_dir()
    with tempfile.TemporaryDirectory(prefix="chaos-image-",
                                     dir=os.environ.get("CHAOS_BUILD_DIR")) as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        target = probe_base(client, args["BASE_IMAGE"])
        _prepare_context(fixtures, ctx, target, progress)
        digest = input_hash(context_files(ctx), args["_base_id"], args["_tox_id"])
        buildargs = {k: v for k, v in args.items() if not k.startswith("_")}
        buildargs["INPUT_HASH"] = digest
        # the offline base has every package: the build needs no network at all
        docker_build(client, IMAGE, ctx, DOCKERFILE, buildargs, progress,
                     network_mode="none" if args["_offline"] else None)
    progress(f"built {IMAGE} in {time.monotonic() - t0:.0f} s")
    return digest


def docker_build(client, image: str, context: Path, dockerfile: str, buildargs: dict[str, str],
                 progress: Progress = quiet, timeout_s: int = BUILD_TIMEOUT_S, **kw) -> None:
    """``docker build`` through the SDK, its steps as progress; a failure is a StackError
    with the build's last lines."""
    import docker
    lines: list[str] = []
    try:
        stream = client.api.build(path=str(context), dockerfile=dockerfile, tag=image,
                                  buildargs=buildargs, rm=True, forcerm=True, pull=False,
                                  decode=True, timeout=timeout_s, **kw)
        for chunk in stream:
            if "error" in chunk:
                raise StackError(f"building {image} failed: {chunk['error'].strip()}\nlast build "
                                 f"output:\n{_tail(''.join(lines), 20)}")
            text = chunk.get("stream", "")
            if text:
                lines.append(text)
                if text.startswith("Step "):
                    progress(text.strip()[:120])
    except docker.errors.APIError as e:
        raise StackError(f"building {image} failed: {e}\nlast build output:\n"
                         f"{_tail(''.join(lines), 20)}") from e
    except StackError:
        raise
    except Exception as e:
        raise StackError(f"building {image} failed: {type(e).__name__}: {e}") from e


def _remove_if_dangling(client, image_id: str) -> None:
    """Drop the image a rebuild replaced, if nothing else tags or uses it."""
    try:
        img = client.images.get(image_id)
        if not img.tags:
            client.images.remove(image_id, noprune=False)
    except Exception:
        pass  # in use by a container, or already gone: leave it


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m chaos.targets.images",
                                description="build the reference stack's docker images offline")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    try:
        ref = ensure_images(lambda m: print(m, flush=True), force=args.force)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{ref} ready ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
