"""Kubernetes Indexed Job manifests for the shards of a join storm.

Nothing here talks to a cluster: ``write_manifests`` writes a Job (``completionMode:
Indexed``, one pod per shard, the index from ``JOB_COMPLETION_INDEX``) to a file, and
says how to apply it. The pods connect to the coordinator (``chaos probe --engine k8s``),
which must be reachable from them at ``sink``.

A shard is never restarted (``backoffLimit: 0``, ``restartPolicy: Never``): a second
attempt would fire the same arrivals again and count them twice; a dead shard is a
recorded event instead. ``activeDeadlineSeconds`` bounds the Job in time.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from chaos.core.errors import ConfigError
from chaos.scale.image import SHARD_IMAGE
from chaos.scale.shard import SHARD_CMD, Shard, shard_env

START_SLACK_S = 300     # pods scheduled, images pulled, every shard connected


@dataclass(frozen=True)
class JobSpec:
    shards: int
    sink: str                        # host:port of the coordinator, as the pods reach it
    image: str = SHARD_IMAGE
    name: str = "chaos-shards"
    namespace: str = "default"
    cpu: str = "1"
    memory: str = "1Gi"
    run_s: float = 600.0             # the schedule, its grace and the coordinator's slack

    def __post_init__(self) -> None:
        Shard(0, self.shards, self.sink)  # the same checks as a shard's own contract
        if not self.name or len(self.name) > 52 or not self.name.replace("-", "").isalnum() \
                or self.name != self.name.lower():
            raise ConfigError(f"the Job name must be lower-case letters, digits and '-', at most "
                              f"52 characters (pod names add the index), got {self.name!r}")


def job_manifest(spec: JobSpec) -> dict:
    labels = {"app.kubernetes.io/name": "chaos-shards", "chaos.scale/run": spec.name}
    env = [{"name": k, "value": v} for k, v in shard_env(None, spec.shards, spec.sink).items()]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.shards,
            "parallelism": spec.shards,          # every shard at once: they share one T0
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(math.ceil(spec.run_s + START_SLACK_S)),
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "shard",
                        "image": spec.image,
                        "command": list(SHARD_CMD),
                        "env": env,          # the index: JOB_COMPLETION_INDEX, set by Kubernetes
                        "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory},
                                      "limits": {"cpu": spec.cpu, "memory": spec.memory}},
                    }],
                },
            },
        },
    }


def write_manifests(spec: JobSpec, out_dir: str | Path) -> tuple[Path, str]:
    """Write the Job to out_dir/<name>.yaml; returns the path and how to apply it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump(job_manifest(spec), sort_keys=False))
    how = (f"kubectl apply -f {path}   # {spec.shards} shards, sending to {spec.sink}\n"
           f"kubectl get pods -l chaos.scale/run={spec.name} -w\n"
           f"kubectl delete -f {path}   # afterwards (or it goes an hour after it finished)")
    return path, how


class K8sEngine:
    """Writes the Job and waits for its pods to connect; the user applies it."""
    name = "k8s"

    def __init__(self, out_dir: str | Path = "k8s", image: str = SHARD_IMAGE,
                 namespace: str = "default", run_s: float = 600.0, say=None) -> None:
        self.out_dir, self.image, self.namespace, self.run_s, self.say = \
            out_dir, image, namespace, run_s, say
        self.say = say or (lambda msg: print(msg, file=sys.stderr))  # stdout may be --json
        self.path: Path | None = None

    def start(self, count: int, sink: str) -> None:
        self.path, how = write_manifests(JobSpec(count, sink, self.image, namespace=self.namespace,
                                                 run_s=self.run_s), self.out_dir)
        self.say(f"wrote {self.path}; apply it to start the shards:\n{how}")

    def check(self) -> None:
        pass  # the cluster is the user's: the coordinator's connect timeout bounds the wait

    def kill(self, index: int) -> None:
        raise ConfigError("the k8s engine cannot kill a shard from here; use kubectl delete pod")

    def stop(self, timeout_s: float = 0.0) -> None:
        pass  # the Job ends itself (activeDeadlineSeconds) and goes after ttlSecondsAfterFinished
