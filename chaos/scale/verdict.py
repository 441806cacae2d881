"""What a run's verdict says of shards that died: the share of the audience they carried
is never lost silently."""

from __future__ import annotations


def dead_shards(storms: list[dict]) -> list[str]:
    """One sentence per dead shard of the storms' results (journal dicts)."""
    out = []
    for s in storms:
        for d in s.get("dead") or ():
            out.append(f"shard {d['index']} of {s['shards']} ({s['engine']} engine) died at "
                       f"{d['at_s']:.1f} s of its storm, carrying {d['share']:.1%} of the "
                       f"audience ({d['arrivals']:,} arrivals, {d['lost']:,} never resolved)")
    return out
