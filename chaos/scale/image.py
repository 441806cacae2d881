"""The shards' image: the reference stack's image plus this project's ``chaos`` package,
built offline from the running sources (no registry, no network).

    python -m chaos.scale.image            # builds chaos-shard:latest if its inputs changed

``FROM chaos-space:latest`` (which has Python, numpy, aiohttp and websockets in
/opt/space) plus the ``chaos`` package's sources and the ``hdrhistogram`` library copied
from this environment; the image's Python must be the same minor version as this one's
(the library has a compiled part). It carries the label ``chaos.shard.inputs`` (a hash of
what went in) and is rebuilt only when that changes. For a real cluster, tag and push it
where the nodes pull from, or set CHAOS_IMAGE to an image of your own that has the
project installed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from chaos.core.errors import EngineUnavailable

SHARD_IMAGE = "chaos-shard:latest"
BASE = "chaos-space:latest"
LABEL = "chaos.shard.inputs"
DOCKERFILE = """FROM {base}
COPY chaos /opt/shard/chaos
COPY deps /opt/shard/deps
ENV PYTHONPATH=/opt/shard:/opt/shard/deps
LABEL {label}={inputs}
"""


def _docker(*args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise EngineUnavailable("building the shards' image needs the docker command") from None


_PACKAGE = Path(__file__).resolve().parents[1]   # the framework's own sources: chaos/


def _sources() -> list[Path]:
    import hdrh
    pkg = _PACKAGE
    lib = Path(hdrh.__file__).parent
    files = sorted(p for p in pkg.rglob("*.py"))
    files += sorted(lib.rglob("*.py")) + sorted(lib.parent.glob("pyhdrh*.so"))
    return files


def ensure_shard_image(base: str = BASE, tag: str = SHARD_IMAGE, force: bool = False) -> str:
    base_id = _docker("image", "inspect", base, "--format", "{{.Id}}")
    if base_id.returncode != 0:
        raise EngineUnavailable(f"the shards' image is built on {base}, which is not here: run "
                                "`python -m chaos.targets.images` first, or set CHAOS_IMAGE")
    files = _sources()
    h = hashlib.sha256(base_id.stdout.strip().encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    inputs = h.hexdigest()[:16]
    have = _docker("image", "inspect", tag, "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}')
    if not force and have.returncode == 0 and have.stdout.strip() == inputs:
        return tag
    minor = _docker("run", "--rm", "--network", "none", base, "python3", "-c",
                    "import sys; print(*sys.version_info[:2])").stdout.split()
    if [int(x) for x in minor] != list(sys.version_info[:2]):
        raise EngineUnavailable(f"{base} has Python {'.'.join(minor)}, this environment "
                                f"{sys.version_info[0]}.{sys.version_info[1]}: its copy of "
                                "hdrhistogram would not load; set CHAOS_IMAGE to an image with "
                                "the project installed")
    import hdrh
    with tempfile.TemporaryDirectory(prefix="chaos-shard-") as tmp:
        ctx = Path(tmp)
        shutil.copytree(_PACKAGE, ctx / "chaos",
                        ignore=shutil.ignore_patterns("__pycache__"))
        lib = Path(hdrh.__file__).parent
        shutil.copytree(lib, ctx / "deps" / "hdrh", ignore=shutil.ignore_patterns("__pycache__"))
        for so in lib.parent.glob("pyhdrh*.so"):
            shutil.copy(so, ctx / "deps")
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base, label=LABEL, inputs=inputs))
        out = _docker("build", "--network", "none", "-t", tag, str(ctx))
        if out.returncode != 0:
            raise EngineUnavailable(f"docker build of {tag} failed: {out.stderr.strip()[-800:]}")
    return tag


if __name__ == "__main__":
    print(ensure_shard_image(force="--force" in sys.argv[1:]))
