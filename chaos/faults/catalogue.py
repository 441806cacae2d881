"""Importing this module registers every fault kind (one module per family)."""

from . import kind_client, kind_cpu, kind_dc, kind_packet_drop, kind_toxics  # noqa: F401
