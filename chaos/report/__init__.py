"""Results of a run, from its journal alone: report.html, junit.xml, the terminal summary.

    journal = load("reports/<run-id>/journal.json")
    paths = render(journal, Path("reports/<run-id>"))   # {"html": ..., "junit": ...}
    summary(journal, report_path=paths["html"])
    sentences(journal)                                   # where it broke, in words

The journal's schema (1) is the contract with the runner; nothing here imports the runner,
docker or pytest, and rich only inside `summary`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import ChaosError, ConfigError
from .junit import to_xml as junit_xml
from .narrative import headline, sentences
from .terminal import summary

__all__ = ["STABLE_FIELDS", "headline", "junit_xml", "load", "render", "sentences", "summary"]

STABLE_FIELDS = ("experiment", "target", "started_at", "verdict", "slos", "faults", "events", "breaking_point")
_EXPECTED = "expected the journal.json a run writes in reports/<run-id>/"


def load(path: str | os.PathLike) -> dict:
    """Read a journal; a missing file, bad JSON or a missing stable field is a ConfigError."""
    p = Path(path)
    if p.is_dir():
        p = p / "journal.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no journal at {p}: the file does not exist; {_EXPECTED}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the journal {p}: {e}; {_EXPECTED}") from None
    try:
        journal = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not a chaos journal: {p} is not JSON ({e.msg} at line {e.lineno}, "
                          f"column {e.colno}); {_EXPECTED}") from None
    if not isinstance(journal, dict):
        raise ConfigError(f"not a chaos journal: {p} holds a JSON {type(journal).__name__}, "
                          f"not an object; {_EXPECTED}")
    check(journal, str(p))
    return journal


def check(journal: dict, where: str = "the journal") -> None:
    """The stable fields are there and have the right shape, or a ConfigError naming the first that is not."""
    for field in STABLE_FIELDS:
        if field not in journal:
            raise ConfigError(f"not a chaos journal: missing field {field} in {where}; {_EXPECTED}")
    shapes = {"experiment": dict, "target": dict, "slos": list, "faults": list, "events": list}
    for field, kind in shapes.items():
        if not isinstance(journal[field], kind):
            raise ConfigError(f"not a chaos journal: field {field} in {where} is a "
                              f"{type(journal[field]).__name__}, expected a JSON "
                              f"{'object' if kind is dict else 'array'}; {_EXPECTED}")


def render(journal: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write report.html and junit.xml into out_dir (each atomically); return their paths."""
    from . import html

    check(journal)
    out = Path(out_dir)
    docs = {"html": ("report.html", html.page(journal)), "junit": ("junit.xml", junit_xml(journal))}
    try:
        out.mkdir(parents=True, exist_ok=True)
        return {key: _write_atomic(out / name, text) for key, (name, text) in docs.items()}
    except OSError as e:
        raise ChaosError(f"cannot write the report into {out}: {e}; pass a writable --out DIR") from None


def _write_atomic(path: Path, text: str) -> Path:
    """A reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
