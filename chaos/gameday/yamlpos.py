"""YAML read with the position of every node, so that an error names its line and column.

    tree = parse(text, "runbook.yaml")          # plain dicts and lists, positions kept
    line, col = where(tree, ("steps", 3, "prompt"))   # 1-based, of the deepest node found

The loader is ruamel.yaml's round-trip one: its mappings and sequences remember where each
key and item was. A YAML syntax error becomes a YamlError with the line and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError


class YamlError(ConfigError):
    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line, self.column = line, column


def parse(text: str, source: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise YamlError(f"{source}, line {line}, column {col}: not valid YAML: {what}. Check the "
                        "indentation and the brackets or quotes opened just before it", line, col) from None
    except YAMLError as e:
        raise YamlError(f"{source}: not valid YAML: {e}") from None


def where(tree: Any, loc: Sequence[Any]) -> tuple[int, int] | None:
    """1-based (line, column) of the deepest node of ``loc`` present in the tree. Parts of
    ``loc`` that are not keys or indexes of the tree (a validator's union tags) are skipped."""
    node, pos = tree, _start(tree)
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                try:
                    pos = lc.value(part) if not isinstance(node[part], (dict, list)) else lc.key(part)
                except (KeyError, TypeError):
                    pass
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                try:
                    pos = lc.item(part)
                except (KeyError, TypeError, IndexError):
                    pass
            node = node[part]
    if pos is None:
        return None
    return pos[0] + 1, pos[1] + 1


def _start(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return lc.line, lc.col
