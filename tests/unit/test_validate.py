"""chaos.core.validate: the checks every front end shares, as functions, argparse types and
pydantic types, with the same messages."""

import argparse

import pydantic
import pytest

from chaos.core import validate as v
from chaos.core.errors import ConfigError


@pytest.mark.parametrize("check, value, kw, words", [
    (v.number, "1.5", {}, "'1.5' is not a number (text)"),
    (v.number, 10**400, {}, "an integer of 401 digits is out of range"),
    (v.number, float("nan"), {}, "nan is not a finite number"),
    (v.number, True, {}, "True is not a number (a bool)"),
    (v.number, 5, {"lo": 0, "hi": 1}, "5 is out of range; accepted: 0 to 1"),
    (v.integer, 2.5, {"lo": 0}, "2.5 is not a whole number; accepted: a whole number of at least 0"),
    (v.seconds, 0, {"positive": True}, "0 is out of range; accepted: more than 0 to 86400 s"),
    (v.text, "a\nb", {"one_line": True}, "holds a line break"),
    (v.text, "x" * 20, {"max_len": 10}, "is too long"),
    (v.name, "run\n", {}, "is not a valid name"),
    (v.choice, ["a"], {"choices": ("a", "b")}, "['a'] is not accepted; use one of a, b"),
    (v.items, "abc", {"cls": int, "example": ""}, "'abc' is not a list (text)"),
    (v.mapping, {1: 2}, {}, "has a key that is not text"),
    (v.duration, "10 parsecs", {}, "is not a duration"),
    (v.duration, "25h", {}, "'25h' is out of range"),
    (v.step, 3, {"window_s": 2.0}, "is longer than the window (2 s)"),
])
def test_each_check_says_what_the_value_and_the_limit(check, value, kw, words):
    with pytest.raises(ConfigError) as e:
        check("x", value, **kw)
    assert str(e.value).startswith("x=") and words in str(e.value)


def test_checks_return_the_canonical_value():
    assert v.integer("x", 100) == 100 and isinstance(v.integer("x", True + 0), int)
    import numpy as np
    assert v.integer("x", np.int64(7)) == 7 and type(v.integer("x", np.int64(7))) is int
    with pytest.raises(ConfigError, match=r"x=100.0 is a float, not a whole number; accepted: any "
                                          r"finite whole number \(write 100, without the decimal point\)"):
        v.integer("x", 100.0)      # a float would reach range() or a seed in the run
    assert v.duration("x", "1h30m") == 5400.0 and v.duration("x", "500ms") == 0.5
    assert v.duration("x", 90) == 90.0 and v.duration("x", "1.5min") == 90.0
    assert v.optional(v.seconds, "x", None) is None
    assert v.parse_scalar("12") == 12 and v.parse_scalar("1e3") == 1000.0
    assert v.parse_scalar("²") == "²" and v.parse_scalar("١٢") == "١٢"
    v.window("x", 5.0, 10.0)
    with pytest.raises(ConfigError, match="longer than the run"):
        v.window("x", 11.0, 10.0)


def test_an_argparse_type_is_a_usage_error_with_the_same_message(capsys):
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--seconds", type=v.arg(v.seconds, positive=True))
    assert p.parse_args(["--seconds", "2.5"]).seconds == 2.5
    with pytest.raises(SystemExit):
        p.parse_args(["--seconds", "inf"])
    assert "argument --seconds: inf is not a finite number" in capsys.readouterr().err


def test_pydantic_types_check_the_same_and_name_the_field():
    class Step(pydantic.BaseModel):
        at_s: v.Seconds
        duration: v.Duration
        share: v.Share
        name: v.Name
        latency_ms: v.Integer(0, 600_000, "ms")
        mode: v.Choice("kill", "stop")

    ok = Step(at_s=0, duration="1m", share=0.05, name="edge-b", latency_ms=200, mode="kill")
    assert ok.duration == 60.0 and ok.latency_ms == 200 and isinstance(ok.latency_ms, int)
    with pytest.raises(pydantic.ValidationError, match="200.0 is a float, not a whole number"):
        Step(at_s=0, duration="1m", share=0.05, name="edge-b", latency_ms=200.0, mode="kill")
    with pytest.raises(pydantic.ValidationError) as e:
        Step(at_s=-1, duration="x", share=2, name="a b", latency_ms=0.9, mode="nuke")
    err = v.from_pydantic(e.value, "runbook.yaml")
    assert isinstance(err, ConfigError)
    text = str(err)
    for words in ("runbook.yaml: at_s: -1 is out of range", "duration: 'x' is not a duration",
                  "share: 2 is out of range", "name: 'a b' is not a valid name",
                  "latency_ms: 0.9 is not a whole number", "mode: 'nuke' is not accepted"):
        assert words in text
