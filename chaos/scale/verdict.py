"""What a run's verdict says of shards that died: the share of the audience they carried
is never lost silently (the rule is chaos.core.judge's; the record chaos.core.history's)."""

from __future__ import annotations

from chaos.core.history import lost_shards


def dead_shards(storms: list[dict]) -> list[str]:
    """One sentence per dead shard of the storms' results (journal dicts)."""
    return [s.describe() for s in lost_shards(storms)]
