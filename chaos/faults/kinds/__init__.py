"""Importing this package registers every fault kind (one module per family)."""

from chaos.faults.kinds import client, cpu, dc, packet_drop, toxics  # noqa: F401
