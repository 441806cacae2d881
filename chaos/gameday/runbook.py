"""The runbook file of a game day: a validated model, loaded from YAML with line numbers.

    book = load("experiments/gameday_dc_loss.yaml")     # RunbookError with line and column
    book.steps[2].kind                                    # "prompt"

The model is the documentation (docs/pages/reference/runbook.md lists every field): a title, a hypothesis, the
roles, the target, the audience, the steady state and halt conditions, and the steps, each
one of ``fault``, ``load``, ``wait``, ``prompt``, ``check``, ``note``, ``revert``. What can be
checked without the stack is checked here: fault names and parameters against the
framework's catalogue, objectives against its SLIs, prompts' choices and timeouts, step ids
and what refers to them. Planning against the target (services, DCs, links) follows in
``chaos.gameday.plan``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError, field_validator, model_validator)

from chaos.core import validate
from chaos.core.errors import ConfigError, RunbookError  # noqa: F401 - re-exported
from chaos.core import yamlfile

STEP_KINDS = ("fault", "load", "wait", "prompt", "check", "note", "revert")
LIVE_SLIS = ("join_time", "audio_delivered", "mouth_to_ear")   # judged while the run goes on
ID_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,47}$"
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# the framework's shared checks (bounded, finite, with the accepted range in the message)
Seconds = validate.PositiveSeconds
SecondsOrZero = validate.Seconds


# -- objectives ---------------------------------------------------------------------------

class ObjectiveSpec(_Model):
    """An SLO as in ``chaos.core.slo.objective(sli, ...)``: the SLI's default, with overrides."""
    sli: str
    threshold: float | None = None
    window_s: Seconds | None = None
    stat: str | None = None
    op: Literal["<=", ">="] | None = None

    @model_validator(mode="after")
    def _framework_checks(self) -> ObjectiveSpec:
        self.build()
        return self

    def build(self):
        from chaos.core.slo import objective
        overrides = {k: v for k, v in (("threshold", self.threshold), ("window_s", self.window_s),
                                       ("stat", self.stat), ("op", self.op)) if v is not None}
        try:
            return objective(self.sli, **overrides)
        except ConfigError as e:
            raise ValueError(str(e)) from None


def _objective_shorthand(v: Any) -> Any:
    return {"sli": v} if isinstance(v, str) else v


Objective = Annotated[ObjectiveSpec, BeforeValidator(_objective_shorthand)]


def _live_only(objectives: list[ObjectiveSpec], what: str) -> None:
    for o in objectives:
        if o.sli not in LIVE_SLIS:
            raise ValueError(f"{o.sli} is measured after the run, so {what} cannot judge it "
                             f"while the game day goes on; use one of {', '.join(LIVE_SLIS)} "
                             "(and declare it under `during:` or `after:` to judge it at the end)")


# -- the target and the audience -----------------------------------------------------------

class Target(_Model):
    """The stack the game day runs against: the reference stack's runtime and profile, or
    ``file``: a target description (chaos-target.yaml) of any stack, relative to the
    runbook's folder (``chaos gameday --target FILE`` gives one instead)."""
    runtime: Literal["local", "docker"] = "local"
    profile: Literal["resilient", "fragile"] = "resilient"
    file: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if self.file is not None and {"runtime", "profile"} & self.model_fields_set:
            raise ValueError("give either file (a target description of your stack) or the "
                             "reference stack's runtime and profile, not both")
        return self


class AudienceSpec(_Model):
    """Who listens, as ``chaos.experiment.Audience``."""
    # the shared check: 12.0 is refused with what to write, as in an Experiment
    listeners: validate.Integer(1, 2000) = 12
    thick_per_dc: validate.Integer(0, 20) = 1
    join_every_s: SecondsOrZero = 1.0
    join_timeout_s: Seconds = 5.0
    retry: Literal["none", "fixed", "exponential", "exponential_jitter"] | None = None


# -- steps --------------------------------------------------------------------------------

class _Step(_Model):
    id: Annotated[str, Field(pattern=ID_RE)] | None = None

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if k in type(self).model_fields)


class FaultStepSpec(_Step):
    """A catalogue fault against a selector, for ``duration_s`` or until a later revert."""
    fault: str
    service: str | None = None
    dc: str | None = None
    link: str | None = None
    count: str = "all"
    params: dict[str, Any] = Field(default_factory=dict)
    duration_s: Seconds | None = None
    label: str = ""

    @field_validator("fault")
    @classmethod
    def _known(cls, v: str) -> str:
        from chaos.faults.base import catalogue
        known = catalogue()
        if v not in known:
            close = difflib.get_close_matches(v, known, n=1)
            raise ValueError(f"unknown fault {v!r}; use one of: {', '.join(sorted(known))}"
                             + (f" (did you mean {close[0]}?)" if close else ""))
        if v == "join_storm":
            raise ValueError("a join storm is a `load` step: write `- load: {rate: 80}` "
                             "with its duration_s")
        return v

    @model_validator(mode="after")
    def _params(self) -> FaultStepSpec:
        from chaos.faults.base import Selector, check_params, catalogue
        try:
            check_params(catalogue()[self.fault], self.params)
        except ConfigError as e:
            raise _At("params", str(e)) from None
        try:
            Selector(service=self.service, dc=self.dc, link=self.link, count=self.count)
        except ConfigError as e:
            raise _At("count", str(e)) from None
        return self


class LoadStepSpec(_Step):
    """A join storm (the ``join_storm`` fault): its parameters under ``load``."""
    load: dict[str, Any]
    duration_s: Seconds | None = None
    label: str = ""

    @field_validator("load")
    @classmethod
    def _params(cls, v: dict[str, Any]) -> dict[str, Any]:
        from chaos.faults.base import check_params, catalogue
        try:
            check_params(catalogue()["join_storm"], v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v


class WaitSpec(_Model):
    """``wait: 10`` (seconds), or ``wait: {until: [...], timeout_s: 30}``: until every
    objective holds over the last ``over_s`` (in ``dc`` if given)."""
    seconds: Seconds | None = None
    until: Annotated[list[Objective], Field(min_length=1)] | None = None
    timeout_s: Seconds | None = None
    over_s: Seconds = 3.0
    dc: str | None = None
    on_timeout: Literal["continue", "abort"] = "continue"

    @field_validator("until")
    @classmethod
    def _live(cls, v: list[ObjectiveSpec] | None) -> list[ObjectiveSpec] | None:
        _live_only(v or [], "a wait")
        return v

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        if (self.seconds is None) == (self.until is None):
            raise _At("seconds", "a wait is `wait: SECONDS` or `wait: {until: [join_time], "
                                 "timeout_s: 30}`, one of the two")
        if self.until is not None and self.timeout_s is None:
            raise _At("timeout_s", "a wait until objectives hold needs a timeout: write "
                                   "`timeout_s: 30` (and `on_timeout: continue` or `abort`)")
        return self

    @property
    def bound_s(self) -> float:
        return self.seconds if self.seconds is not None else float(self.timeout_s or 0)


def _wait_shorthand(v: Any) -> Any:
    return {"seconds": v} if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class WaitStepSpec(_Step):
    """``wait: 10`` (seconds) or ``wait: {until: [...], timeout_s: 30}``."""
    wait: Annotated[WaitSpec, BeforeValidator(_wait_shorthand)]


PROMPT_ACTION_RE = re.compile(r"^(continue|abort|revert\s+(?P<what>\S+))$")


class PromptStepSpec(_Step):
    """A question to a role, its choices, a timeout and what happens then."""
    prompt: str
    role: str | None = None
    choices: Annotated[list[str], Field(min_length=1, max_length=9)] = Field(
        default_factory=lambda: ["done"])
    default: str | None = None
    timeout_s: Seconds
    on_timeout: Literal["default", "abort", "continue"] = "default"
    then: dict[str, str] = Field(default_factory=dict)
    auto: str | None = None
    auto_after_s: SecondsOrZero = 1.0

    @model_validator(mode="after")
    def _choices(self) -> PromptStepSpec:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"choices {self.choices} name one twice; each choice once")
        for what, v in (("default", self.default), ("auto", self.auto)):
            if v is not None and v not in self.choices:
                raise ValueError(f"{what}: {v!r} is not one of the choices ({', '.join(self.choices)}); "
                                 f"write one of them")
        if self.on_timeout == "default" and self.default is None:
            raise ValueError(f"on_timeout is `default` but the prompt has no default; write "
                             f"`default: {self.choices[0]}` or `on_timeout: abort`")
        for choice, action in self.then.items():
            if choice not in self.choices:
                raise ValueError(f"then: {choice!r} is not one of the choices ({', '.join(self.choices)})")
            if not PROMPT_ACTION_RE.match(action.strip()):
                raise ValueError(f"then: {choice}: {action!r}; write `continue`, `abort`, "
                                 "`revert STEP-ID` or `revert all`")
        return self

    def action(self, choice: str) -> str:
        return self.then.get(choice, "continue").strip()


class CheckStepSpec(_Step):
    """Objectives judged now over the last ``over_s`` (in ``dc`` if given)."""
    check: Annotated[list[Objective], Field(min_length=1)]
    over_s: Seconds = 5.0
    dc: str | None = None
    required: bool = True
    on_fail: Literal["continue", "abort"] = "continue"

    @field_validator("check")
    @classmethod
    def _live(cls, v: list[ObjectiveSpec]) -> list[ObjectiveSpec]:
        _live_only(v, "a check")
        return v


class NoteStepSpec(_Step):
    note: Annotated[validate.Text, Field(min_length=1)]
    author: str = "runbook"


class RevertStepSpec(_Step):
    """``revert: STEP-ID`` (one fault or load step) or ``revert: all``."""
    revert: Annotated[str, Field(min_length=1)]


def _step_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((k for k in STEP_KINDS if k in v), None)
    if isinstance(v, BaseModel):
        return getattr(v, "kind", None)
    return None


Step = Annotated[
    Annotated[FaultStepSpec, Tag("fault")] | Annotated[LoadStepSpec, Tag("load")]
    | Annotated[WaitStepSpec, Tag("wait")] | Annotated[PromptStepSpec, Tag("prompt")]
    | Annotated[CheckStepSpec, Tag("check")] | Annotated[NoteStepSpec, Tag("note")]
    | Annotated[RevertStepSpec, Tag("revert")],
    Discriminator(_step_kind, custom_error_type="step_kind",
                  custom_error_message="a step is one of fault, load, wait, prompt, check, note, "
                                       "revert: write e.g. `- note: the commander opens the game day`")]


# -- the runbook --------------------------------------------------------------------------

class Runbook(_Model):
    title: Annotated[validate.Line, Field(min_length=1)]
    name: Annotated[str, Field(pattern=NAME_RE)] | None = None
    hypothesis: validate.Text = ""
    roles: dict[str, str] = Field(default_factory=dict)
    target: Target = Field(default_factory=Target)
    audience: AudienceSpec = Field(default_factory=AudienceSpec)
    steady_state: list[Objective] | None = None
    during: list[Objective] = Field(default_factory=list)
    after: list[Objective] = Field(default_factory=list)
    halts: list[Objective] = Field(default_factory=list)
    before_s: Seconds = 6.0
    after_s: Seconds = 8.0
    recover_s: SecondsOrZero = 3.0
    max_pause_s: SecondsOrZero = 600.0
    gate: bool = True
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("halts")
    @classmethod
    def _halts_live(cls, v: list[ObjectiveSpec]) -> list[ObjectiveSpec]:
        _live_only(v, "a halt condition")
        return v

    @model_validator(mode="after")
    def _references(self) -> Runbook:
        ids = self.step_ids()
        seen: set[str] = set()
        for i, (sid, step) in enumerate(zip(ids, self.steps)):
            if sid in seen:
                raise _StepError(i, "id", f"step id {sid!r} is used twice; give each step its own id")
            seen.add(sid)
            if isinstance(step, PromptStepSpec):
                if step.role is not None and self.roles and step.role not in self.roles:
                    raise _StepError(i, "role", f"role {step.role!r} is not among the runbook's "
                                                f"roles ({', '.join(self.roles)}); add it under "
                                                "`roles:` or use one of them")
                for choice in step.then:
                    self._check_revert(i, "then", step.action(choice).removeprefix("revert").strip()
                                       if step.action(choice).startswith("revert") else None, ids)
            if isinstance(step, RevertStepSpec):
                self._check_revert(i, "revert", step.revert, ids)
        return self

    def _check_revert(self, i: int, field: str, what: str | None, ids: list[str]) -> None:
        if what is None or what == "all":
            return
        faults = [sid for sid, s in zip(ids[:i], self.steps[:i]) if s.kind in ("fault", "load")]
        if what not in faults:
            raise _StepError(i, field, f"reverts {what!r}, which is not a fault or load step "
                                       f"before it; write `all` or one of: {', '.join(faults) or '(none yet)'}")

    def step_ids(self) -> list[str]:
        return [s.id or f"{i + 1}-{s.kind}" for i, s in enumerate(self.steps)]


class _At(ValueError):
    """A problem with one field of the model that raised it (for the line number)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _StepError(ValueError):
    """A cross-step problem, with the step and field it belongs to (for the line number)."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(message)
        self.index, self.field = index, field


# -- loading ------------------------------------------------------------------------------

_MISSING_HINTS = {
    "timeout_s": "a prompt needs a timeout: write `timeout_s: 60` (and `on_timeout: default`, "
                 "`abort` or `continue` for what happens then)",
    "title": "write `title: DC lost at peak` at the top",
    "steps": "write `steps:` with at least one step (`- note: ...`)",
    "sli": "write `sli: join_time` (or one of audio_delivered, mouth_to_ear, ...)",
    "until": "write `until: [join_time]` with the objectives to wait for",
}
_FIELDS = sorted({f for m in (Runbook, Target, AudienceSpec, ObjectiveSpec, FaultStepSpec,
                              LoadStepSpec, WaitSpec, WaitStepSpec, PromptStepSpec, CheckStepSpec,
                              NoteStepSpec, RevertStepSpec) for f in m.model_fields})


def load(path: str | Path) -> Runbook:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError(f"no runbook at {p}: the file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunbookError(f"cannot read the runbook {p}: {e}") from None
    return loads(text, str(p), default_name=_name_from(p))


def loads(text: str, source: str = "<runbook>", default_name: str = "gameday") -> Runbook:
    try:
        doc = yamlfile.parse(text, source)
    except yamlfile.YamlError as e:
        where = f"{source}, line {e.line}, column {e.column}" if e.line else source
        raise RunbookError(f"{where}: {e.problem}", [{"line": e.line, "column": e.column,
                                                      "field": "", "message": e.problem}]) from None
    if not isinstance(doc.data, dict):
        raise RunbookError(f"{source}: a runbook is a YAML mapping (title:, steps:, ...), not a "
                           f"{type(doc.data).__name__}; start with `title: ...`")
    try:
        book = Runbook.model_validate(doc.data)
    except ValidationError as e:
        problems = [_problem(doc, err) for err in e.errors()]
        raise RunbookError(_message(source, problems), problems) from None
    if book.name is None:
        book = book.model_copy(update={"name": default_name})
    return book


def _name_from(p: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", p.stem).strip("-.") or "gameday"
    return stem[:64] if stem[0].isalnum() else f"g{stem}"[:64]


def located(doc: yamlfile.Located, loc: tuple, message: str, field: str = "") -> dict:
    pos = doc.position(loc)
    return {"line": pos[0] if pos else None, "column": pos[1] if pos else None,
            "field": field or _dotted(doc.data, loc), "message": message}


def _problem(doc: yamlfile.Located, err: dict) -> dict:
    loc = tuple(err["loc"])
    if len(loc) > 2 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in STEP_KINDS:
        loc = loc[:2] + loc[3:]      # the step kind's union tag: not a place in the file
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _StepError):
        loc = ("steps", ctx_err.index, ctx_err.field)
        return located(doc, loc, str(ctx_err))
    if isinstance(ctx_err, _At):
        return located(doc, loc + (ctx_err.field,), str(ctx_err))
    return located(doc, loc, _hint(err, loc))


def _dotted(tree: Any, loc: tuple) -> str:
    """steps[3].prompt.timeout_s: the parts of loc that are in the file."""
    out, node = "", tree
    for part in loc:
        if isinstance(node, dict) and part in node:
            out += f".{part}" if out else str(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out += f"[{part}]"
            node = node[part]
        elif isinstance(part, str) and part not in STEP_KINDS and not part[:1].isupper() \
                and not part.startswith(("float", "function")):
            out += f".{part}" if out else part      # a field that is missing from the file
            node = None
    return out


def _hint(err: dict, loc: tuple) -> str:
    kind, msg = err["type"], err["msg"]
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return f"{field} is missing: " + _MISSING_HINTS.get(field, f"add `{field}: ...`")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(field, _FIELDS, n=1)
        if field in STEP_KINDS:
            return (f"`{field}` in the same step as another kind: one step does one thing; "
                    "split it into two steps")
        return (f"unknown field `{field}`" + (f"; did you mean `{close[0]}`?" if close else "")
                + " (docs/pages/reference/runbook.md lists every field)")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "chaos_value":           # the shared checks say the value and the limits
        return msg
    if kind == "too_short" and isinstance(err.get("input"), str):
        return f"{field} is empty: write what it says"
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    return f"{msg}{shown}"


def _message(source: str, problems: list[dict]) -> str:
    lines = []
    for p in problems[:8]:
        where = f"{source}, line {p['line']}, column {p['column']}" if p["line"] else source
        lines.append(f"{where} ({p['field'] or 'the runbook'}): {p['message']}")
    if len(problems) > 8:
        lines.append(f"... and {len(problems) - 8} more")
    return "\n".join(lines)
