"""What a journal must look like before a report is made of it: a journal on disk is
untrusted input (edited by hand, truncated, written by another version, corrupted).

``parse(text, where)`` reads the JSON (no NaN or Infinity, numbers within MAX_ABS, no lone
surrogates, nesting at most MAX_DEPTH deep) and checks the type of every field the report
reads (pydantic, strict: a number is a number, not "1.5"); anything else is a ConfigError
that names the field (``slos[3].value``) and what it holds. Unknown fields are kept: more
fields are welcome, these stay.
"""

from __future__ import annotations

import json
import math
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from ..validate import from_pydantic

MAX_ABS = 1e12            # no journal value (seconds, shares, dB, counts) comes near this
MAX_DEPTH = 32            # the deepest a journal nests is about 6

Num = Union[int, float]   # strict: bools and numeric text are refused
OptNum = Union[int, float, None]
OptStr = Union[str, None]


class _M(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Experiment(_M):
    name: OptStr = None
    title: OptStr = None
    expects: OptStr = None
    reproduce: OptStr = None


class Scale(_M):
    described: OptStr = None
    audience: OptNum = None
    join_rate: OptNum = None


class Target(_M):
    runtime: OptStr = None
    profile: OptStr = None
    stack_id: OptStr = None
    scale_factor: Union[Scale, str, int, float, None] = None


class Phase(_M):
    name: OptStr = None
    start_s: OptNum = None
    end_s: OptNum = None


class DcVerdict(_M):
    verdict: OptStr = None
    value: OptNum = None
    first_breach_s: OptNum = None
    samples: OptNum = None


class Slo(_M):
    name: OptStr = None
    objective: OptStr = None
    verdict: OptStr = None
    phase: OptStr = None
    window: OptStr = None
    unit: OptStr = None
    stat: OptStr = None
    op: OptStr = None
    note: OptStr = None
    value_text: OptStr = None
    value: OptNum = None
    threshold: OptNum = None
    first_breach_s: OptNum = None
    recovered_s: OptNum = None
    samples: OptNum = None
    required: Union[bool, None] = None
    per_dc: Union[dict[str, DcVerdict], None] = None


class Named(_M):
    name: OptStr = None
    kind: OptStr = None
    dc: OptStr = None
    src: OptStr = None
    dst: OptStr = None


class FaultTarget(_M):
    selector: Union[dict[str, Union[str, int, None]], None] = None
    services: Union[list[Named], None] = None
    links: Union[list[Named], None] = None
    others: Union[list[str], None] = None


Scalar = Union[str, int, float, bool, None]


class Fault(_M):
    id: OptStr = None
    name: OptStr = None
    label: OptStr = None
    params: Union[dict[str, Union[Scalar, list[Scalar]]], None] = None
    target: Union[FaultTarget, None] = None
    planned_at_s: OptNum = None
    duration_s: OptNum = None
    started_s: OptNum = None
    ended_s: OptNum = None
    reverted: Union[bool, None] = None
    revert_error: OptStr = None
    inject_error: OptStr = None
    step: Union[int, None] = None
    actions: Union[list[str], None] = None


class Event(_M):
    t_s: OptNum = None
    kind: OptStr = None
    message: OptStr = None
    fault: OptStr = None


class Halt(_M):
    sli: OptStr = None
    objective: OptStr = None
    message: OptStr = None
    value: OptNum = None
    at_s: OptNum = None
    onset_s: OptNum = None
    detected_after_s: OptNum = None
    halted_after_s: OptNum = None


class StepSlo(_M):
    verdict: OptStr = None
    value: OptNum = None


class Step(_M):
    index: Union[int, None] = None
    value: OptNum = None
    start_s: OptNum = None
    end_s: OptNum = None
    label: OptStr = None
    slos: Union[dict[str, StepSlo], None] = None


class FirstBroken(_M):
    step: Union[int, None] = None
    value: OptNum = None


class BreakingPoint(_M):
    param: OptStr = None
    unit: OptStr = None
    fault: OptStr = None
    label: OptStr = None
    steps: Union[list[Step], None] = None
    first_broken: Union[dict[str, Union[FirstBroken, None]], None] = None


class Points(_M):
    t_s: Union[list[Num], None] = None
    value: Union[list[OptNum], None] = None


class SeriesDoc(Points):
    unit: OptStr = None
    stat: OptStr = None
    op: OptStr = None
    note: OptStr = None
    threshold: OptNum = None
    per_dc: Union[dict[str, Points], None] = None


class Audience(_M):
    listeners: OptNum = None
    joined: OptNum = None
    thick: OptNum = None


class Journal(_M):
    schema_: Union[int, str, None] = None
    run_id: OptStr = None
    experiment: Experiment
    target: Target
    started_at: OptStr = None
    ended_at: OptStr = None
    duration_s: OptNum = None
    verdict: OptStr = None
    reason: OptStr = None
    phases: Union[list[Phase], None] = None
    slos: list[Slo]
    faults: list[Fault]
    events: list[Event]
    halt: Union[Halt, None] = None
    breaking_point: Union[BreakingPoint, None] = None
    series: Union[dict[str, SeriesDoc], None] = None
    audience: Union[Audience, None] = None
    storms: Union[list[dict[str, Any]], None] = None


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


def check(doc: dict, where: str, expected: str) -> None:
    """Types of the fields a report reads, in a decoded journal."""
    why = _walk(doc)
    if why:
        raise ConfigError(f"not a chaos journal: in {where}, {why}; {expected}")
    try:
        Journal.model_validate({("schema_" if k == "schema" else k): v for k, v in doc.items()})
    except ValidationError as e:
        err = from_pydantic(e, f"not a chaos journal: {where}")
        raise ConfigError(f"{err}; {expected}") from None
