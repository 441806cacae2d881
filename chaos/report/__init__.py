"""Results of a run, from its journal alone: report.html, junit.xml, the terminal summary.

    journal = load("reports/<run-id>/journal.json")     # the typed journal (chaos.core.journal)
    paths = render(journal, Path("reports/<run-id>"))   # {"html": ..., "junit": ...}
    summary(journal, report_path=paths["html"])
    sentences(journal)                                   # where it broke, in words

Everything here reads the typed journal (``chaos.core.journal.Journal``), by its
attributes; a journal given as a dict is read into it first (``schema.typed``, leniently).
The journal's schema (1) is the contract with the runner; nothing here imports the runner,
docker or pytest, and rich only inside `summary`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from chaos.core import atomic
from chaos.core.errors import ChaosError, ConfigError
from chaos.core.journal import Journal
from chaos.report import schema
from chaos.report.junit import to_xml as junit_xml
from chaos.report.narrative import headline, sentences
from chaos.report.terminal import summary

__all__ = ["STABLE_FIELDS", "Journal", "check", "headline", "junit_xml", "load", "render", "sentences",
           "summary"]

STABLE_FIELDS = ("experiment", "target", "started_at", "verdict", "slos", "faults", "events", "breaking_point")
_EXPECTED = "expected the journal.json a run writes in reports/<run-id>/"


def load(path: str | os.PathLike) -> Journal:
    """Read a journal: untrusted input. A missing or unreadable file, bad JSON, a missing
    stable field or a field of the wrong type is a ConfigError naming it."""
    p = journal_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no journal at {_short(p)}: the file does not exist; {_EXPECTED}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the journal {_short(p)}: {_why(e)}; {_EXPECTED}") from None
    return check(schema.parse(text, _short(p), _EXPECTED), _short(p))


def journal_path(path: str | os.PathLike) -> Path:
    """The journal a path names: the file itself, or journal.json in a directory."""
    try:
        p = Path(path)
        return p / "journal.json" if p.is_dir() else p
    except (OSError, ValueError) as e:   # a name too long, a NUL byte...
        raise ConfigError(f"cannot read the journal {_short(path)}: {_why(e)}; {_EXPECTED}") from None


def _short(path: str | os.PathLike) -> str:
    text = str(path)
    return text if len(text) <= 200 else f"{text[:120]}...{text[-60:]} ({len(text)} characters)"


def _why(e: Exception) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e))[:300]


def check(doc: dict, where: str = "the journal") -> Journal:
    """The typed journal of a decoded document (untrusted: read from disk), if the stable
    fields are there and have the right shape, and every field a report reads has the right
    type; or a ConfigError naming the first that does not."""
    for field in STABLE_FIELDS:
        if field not in doc:
            raise ConfigError(f"not a chaos journal: missing field {field} in {where}; {_EXPECTED}")
    shapes = {"experiment": dict, "target": dict, "slos": list, "faults": list, "events": list}
    for field, kind in shapes.items():
        if not isinstance(doc[field], kind):
            raise ConfigError(f"not a chaos journal: field {field} in {where} is a "
                              f"{type(doc[field]).__name__}, expected a JSON "
                              f"{'object' if kind is dict else 'array'}; {_EXPECTED}")
    return schema.check(doc, where, _EXPECTED)


def render(journal: Journal | dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write report.html and junit.xml into out_dir, both or neither: a reader never finds a
    new report beside an old junit.xml. Returns their paths. A journal given as a dict is
    checked first, strictly (see ``check``)."""
    from chaos.report import html

    if not isinstance(journal, Journal):
        journal = check(journal)
    out = Path(out_dir)
    docs = {"html": ("report.html", html.page(journal)), "junit": ("junit.xml", junit_xml(journal))}
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write_all({key: (out / name, text) for key, (name, text) in docs.items()})
    except (OSError, UnicodeEncodeError) as e:
        raise ChaosError(f"cannot write the report into {_short(out)}: {_why(e)}; nothing was "
                         "written; pass a writable --out DIR") from None


def _write_all(files: dict[str, tuple[Path, str]]) -> dict[str, Path]:
    """Every file written in full beside its target first; then each moved into place, the
    earlier ones put back as they were if a later move fails."""
    staged: dict[str, tuple[Path, str]] = {}
    try:
        for key, (path, text) in files.items():
            staged[key] = (path, _stage(path, text))
        moved: list[tuple[Path, str | None]] = []
        try:
            for path, tmp in staged.values():
                backup = _stage_copy(path)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    if backup is not None:
                        Path(backup).unlink(missing_ok=True)
                    raise
                moved.append((path, backup))
        except BaseException:
            for path, backup in reversed(moved):
                if backup is None:
                    path.unlink(missing_ok=True)
                else:
                    os.replace(backup, path)
            raise
        for _, backup in moved:
            if backup is not None:
                Path(backup).unlink(missing_ok=True)
        return {key: path for key, (path, _) in staged.items()}
    finally:
        for _, tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)


def _stage(path: Path, text: str) -> str:
    """text in a hidden file beside path, flushed to disk, 0644 (a report is for reading)."""
    return atomic.stage(path, text, atomic.ARTIFACT)


def _stage_copy(path: Path) -> str | None:
    """A hard link to the file now at path (to put it back), or None if there is none."""
    if not path.exists():
        return None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
    os.close(fd)
    os.unlink(tmp)
    try:
        os.link(path, tmp)
    except OSError:
        import shutil
        shutil.copy2(path, tmp)
    return tmp
