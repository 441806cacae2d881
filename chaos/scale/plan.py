"""What every shard is told to do, as JSON: the whole arrival schedule (each shard cuts
its own segment from it), how listeners behave, and where the stack's gateways are."""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass

from chaos.core.arrivals import ArrivalSchedule, Burst, Ramp
from chaos.core.storm import StormOptions
from chaos.load.worker import WorkerSpec
from chaos.core.retry import RetryPolicy
from chaos.scale.shard import Shard


@dataclass(frozen=True)
class StormPlan:
    schedule: ArrivalSchedule
    options: StormOptions
    gateways: dict[str, tuple[str, ...]]
    space: str
    speaker_id: str | None = None
    adapter: str = "space"          # the target's audio protocol: whose storm client

    def to_json(self) -> dict:
        return {"schedule": asdict(self.schedule), "options": asdict(self.options),
                "gateways": {dc: list(g) for dc, g in self.gateways.items()},
                "space": self.space, "speaker_id": self.speaker_id, "adapter": self.adapter}

    @classmethod
    def from_json(cls, d: dict) -> StormPlan:
        s = dict(d["schedule"])
        s["ramps"] = tuple(Ramp(**r) for r in s.get("ramps", ()))
        s["bursts"] = tuple(Burst(**b) for b in s.get("bursts", ()))
        o = dict(d["options"])
        if o.get("retry") is not None:
            o["retry"] = RetryPolicy(**o["retry"])
        return cls(ArrivalSchedule(**s), StormOptions(**o),
                   {dc: tuple(g) for dc, g in d["gateways"].items()}, d["space"], d["speaker_id"],
                   d.get("adapter", "space"))

    def arrivals_per_shard(self, count: int) -> list[int]:
        offsets = self.schedule.offsets_array()
        return [len(offsets[i::count]) for i in range(count)]

    def worker_spec(self, shard: Shard) -> WorkerSpec:
        """This shard's storm: its segment, and its global arrival numbering (so home DCs
        are dealt over the whole audience as one generator would)."""
        seg = shard.segment(self.schedule.offsets_array())
        return WorkerSpec(index=shard.index, workers=shard.count,
                          offsets=array("d", seg).tobytes(), gateways=self.gateways,
                          space=self.space, speaker_id=self.speaker_id, options=self.options,
                          duration_s=self.schedule.duration_s, adapter=self.adapter)
