"""YAML read with the position of every node, and validated by a pydantic model.

The one reader of every file a user writes for the framework (target descriptions, fleet
files, game-day runbooks):

    doc = parse(text, "runbook.yaml")              # plain dicts and lists, positions kept
    doc.position(("steps", 3, "prompt"))           # (line, column), 1-based
    doc = read(path, "a target description")       # the file, which must be a mapping
    model = validate(doc, TargetFile, "target description")

A YAML syntax error (duplicate keys included) is a ``YamlError`` with the line and column;
a field of the wrong type, a missing or unknown field, or a reference to something that
does not exist comes back as one ``ConfigError`` listing each problem as
``FILE:LINE:COLUMN: where: what`` (``services[2].dc``), with what to write instead.

Plain scalars are read as YAML 1.2 reads them: only ``true``/``false`` are booleans, so
``no``, ``on`` or ``1:30`` stay the strings the author wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from chaos.core.errors import ConfigError, YamlError  # noqa: F401 - re-exported

MAX_BYTES = 1_000_000
M = TypeVar("M")


@dataclass(frozen=True)
class Located:
    """A parsed YAML document (``data``) and its node tree (``root``), which knows where
    each part sits in the file."""

    path: str
    data: Any
    root: Any

    def position(self, loc: Sequence[Any]) -> tuple[int, int] | None:
        """1-based (line, column) of the deepest node of ``loc`` present in the file: a
        scalar's value, a mapping's or list's key. Parts of ``loc`` that are not keys or
        indexes of the file (a validator's union tags, a missing field) are skipped."""
        import yaml

        node = self.root
        mark = node.start_mark if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                entry = next(((k, v) for k, v in node.value
                              if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
                if entry is None:
                    continue
                key, node = entry
                blank = isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
                mark = node.start_mark if isinstance(node, yaml.ScalarNode) and not blank \
                    else key.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                node = node.value[part]
                mark = node.start_mark
        return (mark.line + 1, mark.column + 1) if mark is not None else None

    def where(self, loc: Sequence[Any]) -> str:
        """``FILE:LINE:COL`` of the deepest node the location reaches."""
        pos = self.position(loc)
        return f"{self.path}:{pos[0]}:{pos[1]}" if pos else self.path


def dotted(loc: Iterable[Any]) -> str:
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(the whole file)"


def parse(text: str, source: str) -> Located:
    """The document and its positions; a syntax error is a YamlError with the line."""
    import yaml

    loader = _loader()(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        problem = f"not valid YAML: {what}" if isinstance(e, yaml.constructor.ConstructorError) \
            else (f"not valid YAML: {what}. Check the indentation and the brackets or quotes "
                  "opened just before it")
        if mark is None:
            raise YamlError(source, problem) from None
        raise YamlError(source, problem, mark.line + 1, mark.column + 1) from None
    except (yaml.YAMLError, RecursionError) as e:
        raise YamlError(source, f"not valid YAML ({type(e).__name__}: {e}); check the file") from None
    finally:
        loader.dispose()
    return Located(source, data, root)


def read(path: str | Path, what: str) -> Located:
    """Parse a YAML file; a missing, huge or malformed file is a ConfigError with the line."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{p}: {p.stat().st_size} bytes is too large for {what} "
                              f"(at most {MAX_BYTES}); is it the right file?")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file; give the path of {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{p} is a directory; give the path of {what} (a YAML file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot be read as UTF-8 text ({e}); give the path of {what}") from None
    doc = parse(text, str(p))
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{p}: {what} must be a YAML mapping (key: value lines), "
                          f"got {type(doc.data).__name__}")
    return doc


def validate(doc: Located, model: type[M], what: str) -> M:
    """The document as ``model``; every problem listed with its line."""
    from pydantic import ValidationError

    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field; remove it or check its spelling"
            elif err["type"] == "missing":
                msg = "required field is missing"
            problems.append((loc, msg))
        raise fail(doc, what, problems) from None


def fail(doc: Located, what: str, problems: Sequence[tuple[Sequence[Any], str]]) -> ConfigError:
    lines = [f"{doc.where(loc)}: {dotted(loc)}: {msg}" for loc, msg in problems]
    n = len(lines)
    return ConfigError(f"{doc.path} is not a valid {what} ({n} problem{'s' if n > 1 else ''}):\n  "
                       + "\n  ".join(lines))


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


@cache
def _loader() -> type:
    """PyYAML's safe loader with YAML 1.2's core schema for plain scalars, refusing
    duplicate keys (the second would silently replace the first)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in seen:
                        raise yaml.constructor.ConstructorError(
                            "while reading a mapping", node.start_mark,
                            f"found the key {key.value!r} twice; keep one", key.start_mark)
                    seen.add((key.tag, key.value))
            return super().construct_mapping(node, deep)

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in rules if tag not in (_BOOL, _INT, _FLOAT)]
        for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                 list("-+0123456789"))
    Loader.add_implicit_resolver(
        _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))

    def integer(loader, node) -> int:
        text = loader.construct_scalar(node)
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)

    Loader.add_constructor(_INT, integer)
    return Loader
