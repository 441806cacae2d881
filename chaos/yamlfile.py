"""YAML files validated by a pydantic model, with errors that name the line.

Used by every file a user writes for the framework (target descriptions, runbooks): a
YAML syntax error, a field of the wrong type, a missing or unknown field, or a reference
to something that does not exist comes back as one ``ConfigError`` listing each problem
as ``FILE:LINE:COLUMN: where: what`` (``services[2].dc``), with what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

MAX_BYTES = 1_000_000
M = TypeVar("M")


class Located:
    """A parsed YAML document and where each of its parts sits in the file."""

    def __init__(self, path: Path, data: Any, root) -> None:
        self.path, self.data, self.root = path, data, root

    def where(self, loc: Sequence[Any]) -> str:
        """``FILE:LINE:COL`` of the deepest node the location reaches."""
        node = self.root
        for key in loc:
            child = None
            if node is not None and node.id == "mapping":
                child = next((v for k, v in node.value if k.value == str(key)), None)
            elif node is not None and node.id == "sequence" and isinstance(key, int) and key < len(node.value):
                child = node.value[key]
            if child is None:
                break
            node = child
        if node is None:
            return str(self.path)
        return f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def dotted(loc: Iterable[Any]) -> str:
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(the whole file)"


def read(path: str | Path, what: str) -> Located:
    """Parse a YAML file; a missing, huge or malformed file is a ConfigError with the line."""
    import yaml

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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise ConfigError(f"{at}: not valid YAML: {e.problem or e.context}. Check the indentation "
                          "and quoting on that line") from None
    except (yaml.YAMLError, RecursionError) as e:
        raise ConfigError(f"{p}: not valid YAML ({type(e).__name__}); check the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: {what} must be a YAML mapping (key: value lines), "
                          f"got {type(data).__name__}")
    return Located(p, data, root)


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
