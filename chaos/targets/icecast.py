"""The Icecast fixture (fixtures/icecast/): its image, built offline, and compose up/down.

The image ``chaos-icecast:latest`` is built from ``fixtures/icecast/docker/Dockerfile`` on
the same base and toxiproxy images as the reference stack's (``images._ensure_base``,
``images._ensure_toxiproxy``); apt inside the build installs Debian's icecast2 and ffmpeg
from the base image's own sources. Like the reference image it carries the hash of its
inputs and is rebuilt only when they change.

    python -m chaos.targets.icecast build [--force]
    python -m chaos.targets.icecast up [--feeder] [--timeout S]
    python -m chaos.targets.icecast down
    python -m chaos.targets.icecast status

Containers and networks are found by the label ``chaos.stack=icecast``; ``down`` removes
only those.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from chaos.core.errors import StackError
from chaos.targets import images
from chaos.targets.base import Progress, quiet

IMAGE = "chaos-icecast:latest"
PROJECT = "chaos-icecast"
STACK_LABEL = "chaos.stack=icecast"
SERVICES = ("origin", "relay-a", "relay-b", "relay-c", "toxiproxy")
BUILD_TIMEOUT_S = 1200
UP_TIMEOUT_S = 120.0
DOWN_TIMEOUT_S = 120.0


def fixture_dir() -> Path:
    return images.fixtures_dir() / "icecast"


def context_files(root: Path) -> list[tuple[str, Path]]:
    """(path in the build context, file): the Dockerfile and conf/."""
    out = []
    for top in ("docker", "conf"):
        for p in sorted((root / top).rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and not images._skip(rel):
                out.append((rel.as_posix(), p))
    return out


def ensure_image(progress: Progress = quiet, force: bool = False) -> str:
    """Build chaos-icecast:latest unless it is current (CHAOS_ICECAST_IMAGE: use that one)."""
    wanted = os.environ.get("CHAOS_ICECAST_IMAGE")
    client = images.docker_client()
    try:
        if wanted and wanted != IMAGE:
            if images._local_or_pull(client, wanted, progress) is None:
                raise StackError(f"CHAOS_ICECAST_IMAGE={wanted} is neither here nor pullable: "
                                 f"unset it to build {IMAGE} offline")
            return wanted
        root = fixture_dir()
        base_ref, base_img, _ = images._ensure_base(client, progress)
        tox_ref, tox_id = images._ensure_toxiproxy(client, progress)
        digest = images.input_hash(context_files(root), base_img.id, tox_id,
                                   extra={"image": IMAGE})
        existing = images._local_image(client, IMAGE)
        if not force and images.image_is_current(existing, digest):
            progress(f"image {IMAGE} is up to date ({digest[:12]})")
            return IMAGE
        progress(f"building {IMAGE} on {base_ref} (apt installs icecast2 and ffmpeg; "
                 "a few minutes the first time)")
        _build(client, root, {"BASE_IMAGE": base_ref, "TOXIPROXY_IMAGE": tox_ref,
                              "INPUT_HASH": digest}, progress)
        if not images.image_is_current(images._local_image(client, IMAGE), digest):
            raise StackError(f"built {IMAGE} but it does not carry {images.LABEL_INPUTS}={digest}")
        if existing is not None:
            images._remove_if_dangling(client, existing.id)
        return IMAGE
    finally:
        client.close()


def _build(client, root: Path, buildargs: dict[str, str], progress: Progress) -> None:
    t0 = time.monotonic()
    # the build context is fixtures/icecast/ itself (a few small files); the build needs the
    # network only for apt, from the base image's own sources
    images.docker_build(client, IMAGE, root, "docker/Dockerfile", buildargs, progress,
                        timeout_s=BUILD_TIMEOUT_S)
    progress(f"built {IMAGE} in {time.monotonic() - t0:.0f} s")


def _compose(args: list[str], timeout_s: float, profiles: tuple[str, ...] = (),
             image: str | None = None, env_extra: dict[str, str] | None = None):
    from chaos.targets.docker import _run, find_compose
    env = {**os.environ, **(env_extra or {})}
    if image:
        env["CHAOS_ICECAST_IMAGE"] = image
    if profiles:
        env["COMPOSE_PROFILES"] = ",".join(profiles)
    cmd = [*find_compose(), "-p", PROJECT, "-f", str(fixture_dir() / "compose.yaml"), *args]
    r = _run(cmd, timeout_s, env=env)
    if r.returncode != 0:
        raise StackError(f"`{shlex.join(cmd)}` failed (exit {r.returncode}):\n"
                         f"{images._tail(r.stderr or r.stdout, 15)}")
    return r


def up(feeder: bool = False, timeout_s: float = UP_TIMEOUT_S, progress: Progress = quiet) -> dict:
    """Build the image if needed, start the fixture, wait until every service is healthy.
    ``feeder``: also start ffmpeg publishing a tone to the mount (a stream fed by
    something else). Returns {service: container name}."""
    image = ensure_image(progress)
    progress("compose up" + (" (with the ffmpeg feeder)" if feeder else ""))
    _compose(["up", "-d", "--no-build", "--remove-orphans"], timeout_s,
             ("feeder",) if feeder else (), image)
    return wait_healthy(timeout_s, progress)


def wait_healthy(timeout_s: float, progress: Progress = quiet) -> dict:
    deadline = time.monotonic() + timeout_s
    client = images.docker_client()
    try:
        while True:
            state = {}
            for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
                health = (c.attrs.get("State", {}).get("Health") or {}).get("Status")
                state[c.labels.get("chaos.service", c.name)] = (c.name, c.status, health)
            missing = [s for s in SERVICES if s not in state]
            sick = [f"{s}: {state[s][1]}/{state[s][2]}" for s in SERVICES if s in state
                    and (state[s][1] != "running" or state[s][2] not in (None, "healthy"))]
            if not missing and not sick:
                progress(f"icecast fixture healthy: {', '.join(sorted(state))}")
                return {s: v[0] for s, v in state.items()}
            if time.monotonic() > deadline:
                raise StackError(f"the icecast fixture is not healthy after {timeout_s:g} s: "
                                 f"missing {missing or 'none'}; {'; '.join(sick) or ''}. "
                                 "See `docker logs` of its containers.")
            time.sleep(1.0)
    finally:
        client.close()


def down(progress: Progress = quiet) -> list[str]:
    """compose down (every profile), then remove whatever labelled chaos.stack=icecast is
    left, containers and networks. Returns what was removed."""
    import docker
    client = images.docker_client()
    try:
        before = [c.name for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]})]
        try:
            _compose(["down", "--remove-orphans", "--volumes", "--timeout", "3"], DOWN_TIMEOUT_S,
                     ("feeder",))
        except StackError as e:
            progress(f"{e}; removing the rest through the docker API")
        for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        nets = []
        for n in client.networks.list(filters={"label": [STACK_LABEL]}):
            try:
                n.remove()
                nets.append(n.name)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                progress(f"could not remove network {n.name}: {e.explanation}")
        return before + nets
    finally:
        client.close()


def status() -> dict[str, str]:
    client = images.docker_client()
    try:
        out = {}
        for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
            health = (c.attrs.get("State", {}).get("Health") or {}).get("Status")
            out[c.labels.get("chaos.service", c.name)] = c.status + (f" ({health})" if health else "")
        return out
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m chaos.targets.icecast",
                                description="the Icecast fixture: build, up, down, status")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--force", action="store_true")
    u = sub.add_parser("up")
    u.add_argument("--feeder", action="store_true", help="ffmpeg publishes a tone to the mount")
    u.add_argument("--timeout", type=float, default=UP_TIMEOUT_S)
    sub.add_parser("down")
    sub.add_parser("status")
    args = p.parse_args(argv)
    say = lambda m: print(m, flush=True)  # noqa: E731
    try:
        if args.cmd == "build":
            say(ensure_image(say, force=args.force))
        elif args.cmd == "up":
            for svc, name in sorted(up(args.feeder, args.timeout, say).items()):
                say(f"  {svc:10} {name}")
        elif args.cmd == "down":
            for what in down(say):
                say(f"removed {what}")
        else:
            for svc, st in sorted(status().items()):
                say(f"{svc:10} {st}")
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
