"""What a journal must look like before a report is made of it: a journal on disk is
untrusted input (edited by hand, truncated, written by another version, corrupted).

``parse(text, where)`` reads the JSON (no NaN or Infinity, numbers within MAX_ABS, no lone
surrogates, nesting at most MAX_DEPTH deep) and checks the type of every field
the runner writes, against the journal's one typed definition (chaos.core.journal, read
strictly here: a number is a number, not "1.5"); anything else is a ConfigError that names
the field (``slos[3].value``) and what it holds. Unknown fields are kept: more fields are
welcome, these stay.

``typed(doc)`` is the lenient way in, for a journal handed over in memory (a test's, a
caller's): what does not fit the model is left out rather than refused, so a journal from a
run that died half-way still renders.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from pydantic import ValidationError

from chaos.core.errors import ConfigError
from chaos.core.journal import Journal
from chaos.core.validate import from_pydantic

MAX_ABS = 1e19            # the largest journal value is a wall clock in ns (a storm's
                          # started_ns, ~1.8e18); seconds, shares, dB and counts are far below
MAX_DEPTH = 32            # the deepest a journal nests is about 6


def _number(text: str) -> float | int:
    v = float(text) if any(c in text for c in ".eE") else int(text)
    if not (isinstance(v, int) or math.isfinite(v)) or abs(v) > MAX_ABS:
        raise ValueError(f"the number {text[:40]} is out of range (at most {MAX_ABS:g} in size)")
    return v


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number JSON allows (a journal writes null for it)")


def _walk(doc: Any) -> str | None:
    """Why the decoded document cannot be a journal (too deep, bad text), or None."""
    stack = [(doc, 0, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return f"{path or '(top)'} nests deeper than {MAX_DEPTH} levels"
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return f"{path or '(top)'} holds a lone surrogate (not valid Unicode)"
        elif isinstance(node, dict):
            for k, v in node.items():
                try:
                    k.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{path or '(top)'} has a key with a lone surrogate (not valid Unicode)"
                stack.append((v, depth + 1, f"{path}.{k}" if path else k))
        elif isinstance(node, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def parse(text: str, where: str, expected: str) -> dict:
    """The journal in text, decoded (then ``check`` its fields); ConfigError saying where
    it is not a journal."""
    try:
        doc = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not a chaos journal: {where} is not JSON ({e.msg} at line {e.lineno}, "
                          f"column {e.colno}); {expected}") from None
    except RecursionError:
        raise ConfigError(f"not a chaos journal: {where} nests too deeply to read; {expected}") from None
    except ValueError as e:
        raise ConfigError(f"not a chaos journal: {where}: {e}; {expected}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"not a chaos journal: {where} holds a JSON {type(doc).__name__}, "
                          f"not an object; {expected}")
    return doc


def check(doc: dict, where: str, expected: str) -> Journal:
    """Types of the fields a report reads, in a decoded journal: the typed journal, or a
    ConfigError naming the first field that is not what it should be."""
    why = _walk(doc)
    if why:
        raise ConfigError(f"not a chaos journal: in {where}, {why}; {expected}")
    try:
        return Journal.model_validate(doc, strict=True)
    except ValidationError as e:
        err = from_pydantic(e, f"not a chaos journal: {where}")
        raise ConfigError(f"{err}; {expected}") from None


_PARTS = (("experiment", dict), ("target", dict), ("slos", list), ("faults", list), ("events", list))
MAX_PASSES = 50


def typed(doc: dict | Journal) -> Journal:
    """A journal in memory as the typed journal, leniently: a stable part that is missing or
    not what it should be is empty, and any other value that does not fit is left out (an
    entry of a list, a field of an object). ``doc`` itself is not changed."""
    if isinstance(doc, Journal):
        return doc
    doc = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for _ in range(MAX_PASSES):
        for name, kind in _PARTS:
            if not isinstance(doc.get(name), kind):
                doc[name] = kind()
        try:
            return Journal.model_validate(doc)
        except ValidationError as e:
            # deepest first, so that dropping one does not move another
            for path in sorted({_present(doc, err["loc"]) for err in e.errors()}, reverse=True):
                _drop(doc, path)
    return Journal.model_validate({name: kind() for name, kind in _PARTS})


def _present(doc: Any, loc: tuple) -> tuple:
    """The longest start of an error's location that names a value in doc (a location goes
    on into the model's union members, which the document does not have)."""
    node, path = doc, ()
    for k in loc:
        if isinstance(node, dict) and isinstance(k, str) and k in node:
            node = node[k]
        elif isinstance(node, list) and isinstance(k, int) and 0 <= k < len(node):
            node = node[k]
        else:
            break
        path += (k,)
    return path


def _drop(doc: dict, path: tuple) -> None:
    if not path:
        doc.clear()
        return
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]
