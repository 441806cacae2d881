"""The shards' wire: one JSON object a line over TCP, shard <-> coordinator.

shard -> coordinator: hello {index, count, pid, host}; pong {t, shard_wall};
snap {sec, join, fired, joined, failed, late}; drained; halted {fired, shard_wall};
final {report}.  coordinator -> shard: ping {t}; start {t0_wall, plan}; release; halt.
"""

from __future__ import annotations

import asyncio
import json

MAX_LINE = 16 * 1024 * 1024   # a snapshot is a few kB; a final report with its counters more


async def send(writer: asyncio.StreamWriter, kind: str, **body) -> None:
    writer.write(json.dumps({"kind": kind, **body}, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


async def recv(reader: asyncio.StreamReader) -> dict | None:
    """The next message, or None at the end of the stream."""
    line = await reader.readline()
    if not line:
        return None
    return json.loads(line)
