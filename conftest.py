"""The suite's layers as markers, given by where a test lives (so no test can forget one):

- ``unit``: tests/unit, no stack, no network beyond loopback sockets it opens itself;
- ``integration``: tests/integration, against real stacks (``local`` and ``docker`` say which);
- ``experiments``: experiments/, the canaries against the embedded stack.

``pytest -m unit`` is the minute-long developer loop; ``pytest -m "not docker"`` skips the
engine. The README's Development section lists them with their times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent
_LAYERS = {("tests", "unit"): "unit", ("tests", "integration"): "integration",
           ("experiments",): "experiments"}


def _layer(path: Path) -> str | None:
    try:
        parts = path.resolve().relative_to(_ROOT).parts
    except ValueError:
        return None
    for prefix, name in _LAYERS.items():
        if parts[:len(prefix)] == prefix:
            return name
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = _layer(Path(str(item.fspath)))
        if layer is not None:
            item.add_marker(getattr(pytest.mark, layer))
