"""mkdocs hook: the reference sections that the code already says, generated at build time.

A page asks for one with a line ``<!-- generated: NAME -->``; NAME is one of ``GENERATORS``.
The CLI reference comes from the ``chaos`` command's own argparse parser, the exit codes from
``chaos.core.exits``, the pytest options from the plugin's ``pytest_addoption``, the journal's
fields from its pydantic models and the adapter protocol from ``chaos.adapters.base``: what
the docs say is what the code does, and a new sub-command or option appears by itself.
"""

from __future__ import annotations

import argparse
import enum
import functools
import inspect
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # document this checkout's code, not another install's
    sys.path.insert(0, str(ROOT))

MARK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
HELP_WIDTH = 96


# -- the chaos command ------------------------------------------------------------------

def commands(parser: argparse.ArgumentParser | None = None):
    """(prog, parser) of the command and every sub-command, depth first, in parser order."""
    if parser is None:
        from chaos.cli import _parser
        parser = _parser()
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):    # aliases once
                yield from commands(sub)


def _anchor(prog: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", prog.lower()).strip("-")


def cli() -> str:
    progs = list(commands())
    out = ["| command | what it does |", "|---|---|"]
    for prog, p in progs:
        out.append(f"| [`{prog}`](#{_anchor(prog)}) | {(p.description or _help_of(prog) or '').strip()} |")
    for prog, p in progs:
        # argparse wraps at the terminal's width: one width for the page, whatever the terminal
        p.formatter_class = functools.partial(p.formatter_class, width=HELP_WIDTH)
        out += ["", f"## `{prog}` {{#{_anchor(prog)}}}", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(out)


def _help_of(prog: str) -> str | None:
    """The one-line help its parent gave a sub-command."""
    parent_prog, _, name = prog.rpartition(" ")
    for pprog, p in commands():
        if pprog != parent_prog:
            continue
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if choice.dest == name:
                        return (choice.help or "").replace("|", "\\|")
    return None


# -- exit codes -------------------------------------------------------------------------

def exit_codes() -> str:
    from chaos.core.exits import EPILOG, Exit
    rows = ["| code | name (`chaos.core.exits.Exit`) | meaning |", "|---|---|---|"]
    for line in EPILOG.splitlines()[1:]:
        code, _, meaning = line.strip().partition(" ")
        rows.append(f"| {code} | `{Exit(int(code)).name}` | {meaning.strip()} |")
    return "\n".join(rows + ["", "`EPILOG`, the text for the end of every `--help`:", "", "```text", EPILOG, "```"])


# -- the pytest plugin ------------------------------------------------------------------

class _Recorder:
    """Stands in for pytest's parser: records what ``pytest_addoption`` declares."""

    def __init__(self) -> None:
        self.options: dict[str, dict] = {}
        self.inis: dict[str, tuple[str, dict]] = {}
        self.group = ""

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        self.group = description or self.group
        return self

    def addoption(self, *names: str, **kw) -> None:
        self.options[names[0]] = kw

    def addini(self, name: str, help: str, **kw) -> None:
        self.inis[name] = (help, kw)


def pytest_options() -> str:
    from chaos import pytest_plugin as plugin
    rec = _Recorder()
    plugin.pytest_addoption(rec)
    out = ["| option | environment | ini | values | default | what it does |", "|---|---|---|---|---|---|"]
    for o in plugin.OPTIONS:
        values = " \\| ".join(f"`{c}`" for c in o.choices) if o.choices else f"`{o.metavar or 'VALUE'}`"
        default = "" if o.default is None else f"`{o.default}`"
        old = f" (was `{o.old}`, deprecated)" if o.old else ""
        out.append(f"| `{o.flag}`{old} | `{o.env}` | `{o.ini}` | {values} | {default} | {o.help} |")
    own = {o.ini for o in plugin.OPTIONS}
    out += ["", "Settings in the ini only:", "", "| ini | type | default | what it does |", "|---|---|---|---|"]
    for name, (help_, kw) in rec.inis.items():
        if name not in own:
            out.append(f"| `{name}` | {kw.get('type') or 'string'} | `{kw.get('default')!r}` | {help_} |")
    return "\n".join(out)


# -- the journal ------------------------------------------------------------------------

def _type_words(t, models: list) -> str:
    from pydantic import BaseModel
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:
        return _type_words(args[0], models)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(_type_words(a, models) for a in kept)
    if origin in (list, tuple):
        return "list of " + _type_words(args[0], models) if args else "list"
    if origin is dict:
        return "map of " + _type_words(args[1], models) if args else "object"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if isinstance(t, type) and issubclass(t, BaseModel):
        if t not in models:
            models.append(t)
        return f"[{t.__name__}](#journal-{t.__name__.lower()})"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in t)
    if t is typing.Any:
        return "any"
    return {float: "number", int: "integer", str: "text", bool: "boolean"}.get(t, getattr(t, "__name__", str(t)))


def journal() -> str:
    from chaos.core.journal import Journal
    models, out, i = [Journal], [], 0
    while i < len(models):
        m = models[i]
        doc = inspect.getdoc(m) or ""
        if m.__doc__ is None or doc.startswith("A part of the journal"):
            doc = ""
        out += ["", f"### `{m.__name__}` {{#journal-{m.__name__.lower()}}}", ""]
        if doc:
            out += [doc.replace("\n", " "), ""]
        out += ["| field | type | required |", "|---|---|---|"]
        for name, f in m.model_fields.items():
            out.append(f"| `{f.alias or name}` | {_type_words(f.annotation, models)} | "
                       f"{'yes' if f.is_required() else ''} |")
        i += 1
    return "\n".join(out).lstrip()


# -- the adapter protocol ---------------------------------------------------------------

def adapter_protocol() -> str:
    from chaos.adapters import base
    out = ["| half | member | what it is |", "|---|---|---|"]
    for cls in (base.SpeakerSide, base.ListenerSide, base.Adapter):
        for name, member in cls.__dict__.items():
            if name.startswith("_"):
                continue
            if callable(member):
                what = (inspect.getdoc(member) or "").split("\n\n")[0].replace("\n", " ")
                kind = "async method" if inspect.iscoroutinefunction(member) else "method"
                out.append(f"| `{cls.__name__}` | `{name}(...)` ({kind}) | {what} |")
            else:
                out.append(f"| `{cls.__name__}` | `{name}` = `{member!r}` | class attribute |")
    return "\n".join(out)


GENERATORS = {"cli": cli, "exit-codes": exit_codes, "pytest-options": pytest_options,
              "journal": journal, "adapter-protocol": adapter_protocol}


def on_page_markdown(markdown: str, page, config, files) -> str:
    def one(m: re.Match) -> str:
        name = m.group(1)
        if name not in GENERATORS:
            raise KeyError(f"{page.file.src_path}: no generated section {name!r}; "
                           f"there are {', '.join(GENERATORS)}")
        return GENERATORS[name]()
    return MARK.sub(one, markdown)
