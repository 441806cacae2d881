"""What a declaration may hold: one set of checks for the Python API, the CLI, target files,
runbooks and the files the framework reads back (state, ledger, journals).

Every check takes ``what`` (how the user wrote it: ``"experiment x: before_s"``, or ``""``
for a bare CLI value), the value, and its limits; it returns the value in its canonical type
or raises ConfigError saying what, the value, the limit and what to write instead:

    seconds("experiment x: before_s", 10**400, positive=True)
    -> ConfigError: experiment x: before_s=an integer of 401 digits is out of range;
       accepted: more than 0 to 86400 s (e.g. before_s=6)

The same checks, for other front ends:

- the CLI: ``arg(seconds, positive=True)`` is an argparse ``type=`` (a bad value is a usage
  error, exit 2, with this message); ``parse_scalar`` reads ``--param k=v`` values;
- pydantic models (target files, runbooks): ``Seconds``, ``PositiveSeconds``, ``Duration``,
  ``Share``, ``Name``, ``Text``, ``Line``, ``Seed``, ``Count``, ``PositiveInt``, and the
  factories ``Number(lo, hi, unit)``, ``Integer(lo, hi, unit)``, ``Choice(*values)``, all
  ``Annotated[...]`` types (imported lazily: pydantic is loaded only when one is used);
  ``from_pydantic(error, source)`` turns a ValidationError into one ConfigError that names
  each bad field's location.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from chaos.core.errors import ConfigError

MAX_RUN_S = 24 * 3600.0       # one run, one fault, one hold: a day at most
MIN_STEP_S = 0.1              # a sliding window moves at least this far (judging stays bounded)
MAX_TEXT = 10_000             # characters of a title, a note, a description
SEED_MAX = 2**32 - 1
MAX_LISTENERS = 10_000        # thin listeners of one run (one process holds about this many)
MAX_THICK_PER_DC = 20         # each decodes and analyses real-rate audio
NAME_RULE = "letters, digits, '_', '-', '.', starting with a letter or digit, up to 64"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DURATION_RE = re.compile(r"(?:([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(h|min|ms|m|s))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(h|min|ms|m|s)")
_UNIT_S = {"h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_MAX_LITERAL = 40             # characters of a duration written as text


def show(value: Any) -> str:
    """A value as a message shows it: short, whatever it is."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        if value.bit_length() < 13_000:        # str() refuses past 4300 digits
            return f"an integer of {len(str(abs(value)))} digits"
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):       # a huge integer inside, a cycle
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _subject(what: str, value: Any) -> str:
    return f"{what}={show(value)}" if what else show(value)


def fail(what: str, value: Any, why: str, accepted: str, instead: str = "") -> NoReturn:
    raise ConfigError(f"{_subject(what, value)} {why}; accepted: {accepted}"
                      + (f" ({instead})" if instead else ""))


def _g(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range(lo: float | None, hi: float | None, unit: str, lo_open: bool, hi_open: bool,
           integral: bool = False) -> str:
    u = f" {unit}" if unit else ""
    kind = "a whole number" if integral else "a number"
    if lo is not None and hi is not None:
        return (f"{'more than ' if lo_open else ''}{_g(lo)} to {'less than ' if hi_open else ''}"
                f"{_g(hi)}{u}")
    if lo is not None:
        return f"{kind} {'more than' if lo_open else 'of at least'} {_g(lo)}{u}"
    if hi is not None:
        return f"{kind} {'less than' if hi_open else 'of at most'} {_g(hi)}{u}"
    return f"any finite {kind.split(' ', 1)[1]}{u}"


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    return "None" if value is None else _a(type(value).__name__)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(what: str, value: Any, *, lo: float | None = None, hi: float | None = None,
           unit: str = "", lo_open: bool = False, hi_open: bool = False, example: str = "") -> float:
    """A finite real number within [lo, hi] (open ends with lo_open / hi_open)."""
    accepted = _range(lo, hi, unit, lo_open, hi_open)
    if not _is_number(value):
        fail(what, value, f"is not a number ({_kind(value)})", accepted, example)
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):
        fail(what, value, "is out of range", accepted, example)
    if not math.isfinite(v):
        fail(what, value, "is not a finite number", accepted, example)
    if (lo is not None and (v < lo or (lo_open and v == lo))) or \
            (hi is not None and (v > hi or (hi_open and v == hi))):
        fail(what, value, "is out of range", accepted, example)
    return v


def integer(what: str, value: Any, *, lo: int | None = None, hi: int | None = None,
            unit: str = "", example: str = "") -> int:
    """A whole number within [lo, hi], written as one: 0.9 is refused, and so is 100.0 (a
    float would reach ``range()`` or a seed as a float and fail in the run, not here)."""
    accepted = _range(lo, hi, unit, False, False, integral=True)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = int(value)
    elif _is_number(value):
        f = number(what, value, unit=unit, example=example)
        if not f.is_integer():
            fail(what, value, "is not a whole number", accepted,
                 example or f"write {math.floor(f)} or {math.ceil(f)}")
        fail(what, value, "is a float, not a whole number", accepted,
             f"write {int(f)}, without the decimal point" if abs(f) < 1e16 else
             "write it without a decimal point or exponent")
    else:
        fail(what, value, f"is not a number ({_kind(value)})", accepted, example)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        fail(what, value, "is out of range", accepted, example)
    return v


def seconds(what: str, value: Any, *, positive: bool = False, hi: float = MAX_RUN_S,
            example: str = "") -> float:
    """A finite number of seconds: >= 0 (or > 0 with positive), at most hi (a day)."""
    return number(what, value, lo=0.0, hi=hi, unit="s", lo_open=positive, example=example)


def share(what: str, value: Any, example: str = "") -> float:
    """A share from 0 to 1 (0.05 is 5 %)."""
    return number(what, value, lo=0.0, hi=1.0, example=example or "0.05 is 5 %")


def seed(what: str, value: Any) -> int:
    return integer(what, value, lo=0, hi=SEED_MAX, example="any whole number from 0, e.g. 0 or 42")


def flag(what: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(what, value, "is not True or False", "True, False")
    return value


def text(what: str, value: Any, *, max_len: int = MAX_TEXT, one_line: bool = False,
         empty: bool = True) -> str:
    """A string that can be written as UTF-8 (no lone surrogates), of bounded length; with
    one_line, no line breaks or control characters."""
    rule = f"text of up to {max_len} characters" + (" on one line" if one_line else "")
    if not isinstance(value, str):
        fail(what, value, f"is not text ({_kind(value)})", rule,
             "decode bytes first" if isinstance(value, (bytes, bytearray)) else "")
    if len(value) > max_len:
        fail(what, value, "is too long", rule)
    if not empty and not value.strip():
        fail(what, value, "is empty", rule)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail(what, value, "holds a lone surrogate (not valid Unicode)", rule)
    if one_line and any(ord(c) < 32 or ord(c) == 127 for c in value):
        fail(what, value, "holds a line break or a control character", rule)
    if "\x00" in value:
        fail(what, value, "holds a NUL character", rule)
    return value


def name(what: str, value: Any, *, pattern: re.Pattern = NAME_RE, rule: str = NAME_RULE) -> str:
    """An identifier matched whole (a trailing newline is not let through)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        fail(what, value, "is not a valid name", rule)
    return value


def choice(what: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{_subject(what, value)} is not accepted; use one of {', '.join(choices)}")
    return value


def optional(check: Callable[..., Any], what: str, value: Any, **kw: Any) -> Any:
    """None, or what check accepts."""
    return None if value is None else check(what, value, **kw)


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def instance(what: str, value: Any, cls: type, example: str) -> Any:
    if not isinstance(value, cls):
        fail(what, value, f"is not {_a(cls.__name__)}", _a(cls.__name__), example)
    return value


def items(what: str, value: Any, cls: type, example: str, *, max_items: int = 1000,
          empty: bool = True) -> tuple:
    """A list or tuple of cls (not a string, not a mapping, not None)."""
    kind = f"a list of {cls.__name__}"
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Sequence):
        fail(what, value, f"is not a list ({_kind(value)})", kind + ", or [] for none",
             example)
    out = tuple(value)
    if len(out) > max_items:
        fail(what, value, f"has {len(out)} entries", f"{kind}, up to {max_items}", example)
    if not empty and not out:
        fail(what, value, "is empty", f"{kind}, at least one", example)
    for i, v in enumerate(out):
        if not isinstance(v, cls):
            fail(f"{what}[{i}]", v, f"is not {_a(cls.__name__)}", kind, example)
    return out


def mapping(what: str, value: Any, example: str = "") -> dict:
    """A mapping with text keys (parameters by name)."""
    if not isinstance(value, Mapping):
        fail(what, value, f"is not a mapping ({_kind(value)})", "a dict of name: value",
             example)
    for k in value:
        if not isinstance(k, str):
            fail(what, k, "has a key that is not text", "a dict of name: value", example)
    return dict(value)


def duration(what: str, value: Any, *, positive: bool = True, hi: float = MAX_RUN_S) -> float:
    """Seconds, as a number or as text: "90", "90s", "1.5m", "10min", "1h30m", "500ms"."""
    if not isinstance(value, str):
        return seconds(what, value, positive=positive, hi=hi)
    raw = value.strip()
    if _NUMBER_RE.fullmatch(raw) and len(raw) <= _MAX_LITERAL:
        parsed = float(raw)
    elif _DURATION_RE.fullmatch(raw) and len(raw) <= _MAX_LITERAL:
        parsed = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(raw))
    else:
        fail(what, value, "is not a duration", "seconds (90), or with units: 90s, 1.5m, "
             "10min, 1h30m, 500ms")
    try:
        return seconds(what, parsed, positive=positive, hi=hi)
    except ConfigError as e:   # say it as it was written
        shown = parse_scalar(raw) if _NUMBER_RE.fullmatch(raw) else raw
        raise ConfigError(str(e).replace(_subject(what, parsed), _subject(what, shown), 1)) from None


def window(what: str, window_s: float | None, run_s: float) -> None:
    """A window must fit in the run that judges it."""
    if window_s is not None and window_s > run_s:
        fail(what, window_s, f"is longer than the run ({run_s:g} s)", f"at most {run_s:g} s",
             "shorten the window or lengthen the run")


def step(what: str, step_s: Any, window_s: float | None) -> float:
    """How far a sliding window moves: at least MIN_STEP_S, at most the window itself (a
    longer step would skip samples between windows and judge only some of the run)."""
    example = f"e.g. step_s={min(1.0, window_s):g}" if window_s else "e.g. step_s=1.0"
    v = number(what, step_s, lo=MIN_STEP_S, hi=MAX_RUN_S, unit="s", example=example)
    if window_s is not None and v > window_s:
        fail(what, step_s, f"is longer than the window ({window_s:g} s): windows would skip "
             "samples and only some of the run would be judged",
             f"{MIN_STEP_S:g} to {window_s:g} s", example)
    return v


# -- the CLI ----------------------------------------------------------------------------------

def parse_scalar(raw: str) -> Any:
    """A CLI value: an int, a float (ASCII digits only: '²' or '١٢' stay text), or the text."""
    s = raw.strip()
    if _INT_RE.fullmatch(s) and len(s) <= 4000:   # Python's own limit is 4300 digits
        return int(s)
    if _NUMBER_RE.fullmatch(s) or s.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return float(s)                           # refused as not finite (also past float's range)
    return s


def arg(check: Callable[..., Any], **kw: Any) -> Callable[[str], Any]:
    """An argparse ``type=``: the text parsed (parse_scalar), then ``check("", value, **kw)``;
    a refusal is argparse's usage error (exit 2) with the check's message."""
    import argparse

    def convert(raw: str) -> Any:
        try:
            return check("", parse_scalar(raw) if check is not duration else raw, **kw)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = check.__name__
    return convert


# -- pydantic (target files, runbooks) --------------------------------------------------------

def _pydantic(check: Callable[..., Any], base: type, **kw: Any):
    from typing import Annotated

    from pydantic import BeforeValidator
    from pydantic_core import PydanticCustomError

    def validate(v: Any) -> Any:
        try:
            return check("", v, **kw)
        except ConfigError as e:
            raise PydanticCustomError("chaos_value", "{reason}", {"reason": str(e)}) from None
    return Annotated[base, BeforeValidator(validate)]


def Number(lo: float | None = None, hi: float | None = None, unit: str = "",  # noqa: N802
           lo_open: bool = False, hi_open: bool = False):
    """A pydantic field type: a finite number within [lo, hi]."""
    return _pydantic(number, float, lo=lo, hi=hi, unit=unit, lo_open=lo_open, hi_open=hi_open)


def Integer(lo: int | None = None, hi: int | None = None, unit: str = ""):  # noqa: N802
    """A pydantic field type: a whole number within [lo, hi]."""
    return _pydantic(integer, int, lo=lo, hi=hi, unit=unit)


def Choice(*values: str):  # noqa: N802
    """A pydantic field type: one of the given words."""
    return _pydantic(choice, str, choices=values)


_TYPES: dict[str, Callable[[], Any]] = {
    "Seconds": lambda: _pydantic(seconds, float),
    "PositiveSeconds": lambda: _pydantic(seconds, float, positive=True),
    "Duration": lambda: _pydantic(duration, float),
    "Share": lambda: _pydantic(share, float),
    "Name": lambda: _pydantic(name, str),
    "Text": lambda: _pydantic(text, str),
    "Line": lambda: _pydantic(text, str, one_line=True, max_len=500),
    "Seed": lambda: _pydantic(seed, int),
    "Count": lambda: _pydantic(integer, int, lo=0),
    "PositiveInt": lambda: _pydantic(integer, int, lo=1),
}
_made: dict[str, Any] = {}


def __getattr__(attr: str) -> Any:   # the pydantic types, built on first use
    if attr in _TYPES:
        if attr not in _made:
            _made[attr] = _TYPES[attr]()
        return _made[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def from_pydantic(error: Any, source: str) -> ConfigError:
    """One ConfigError for a pydantic ValidationError: each bad field by its location
    (``steps[3].fault.params.latency_ms``) and what is wrong with it."""
    lines = []
    for e in error.errors(include_url=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.get("loc", ()))
        lines.append(f"{loc.lstrip('.') or '(top)'}: {e.get('msg', 'invalid')}")
    shown = lines[:10] + ([f"... and {len(lines) - 10} more"] if len(lines) > 10 else [])
    return ConfigError(f"{source}: " + "; ".join(shown))
